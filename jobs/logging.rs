//! Logs and progress, on stderr, every line through [`crate::redact`].
//!
//! - `text` (the default): compact lines for people; a run's lines carry its
//!   `run{run_id=.. period=..}` span.
//! - `json`: one JSON object per line for log collectors: `timestamp`, `level`, `target`,
//!   `message`, the event's fields, and the fields of every span it happened in, at the top
//!   level. Every line of a run therefore carries `run_id` and `period` (and a backfill's
//!   `backfill_id`), so concurrent runs and `backfill --jobs 2` can be told apart.
//! - On a terminal (and not in JSON mode), `run` draws one progress line: the current step,
//!   `k/n` steps, the elapsed time. It listens to the step events of [`STEP_TARGET`], which
//!   `-v` also shows as log lines.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the step events: `started` with the step's name, and the plan's step count.
pub const STEP_TARGET: &str = "crm_pipeline::step";

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// Starts logging: `verbose` 0 shows warnings, 1 progress (`info`), 2 `debug`;
/// `CRM_PIPELINE_LOG` (an `EnvFilter` directive) overrides it.
pub fn init(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,datafusion=warn",
        _ => "debug,datafusion=info",
    };
    let filter =
        EnvFilter::try_from_env("CRM_PIPELINE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let terminal = std::io::stderr().is_terminal();
    let progress = (format == LogFormat::Text && terminal).then(|| {
        ProgressLayer.with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.target() == STEP_TARGET
        }))
    });
    let registry = tracing_subscriber::registry().with(progress);
    let result = match format {
        LogFormat::Json => registry
            .with(SpanFieldsLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLine)
                    .with_writer(RedactingStderr)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_ansi(terminal)
                    .with_writer(RedactingStderr)
                    .with_filter(filter),
            )
            .try_init(),
    };
    // a second init (tests) keeps the first subscriber
    let _ = result;
}

/// Writes one line to stderr outside the log subscriber (a final error, a backfill's line),
/// as a JSON object in JSON mode, else as text; redacted, and around the progress line.
pub fn line(format: LogFormat, level: &str, message: &str, fields: Map<String, Value>) {
    let text = match format {
        LogFormat::Text => format!("{message}\n"),
        LogFormat::Json => {
            let mut m = Map::new();
            m.insert("timestamp".into(), Value::String(now()));
            m.insert("level".into(), Value::String(level.to_uppercase()));
            m.insert("message".into(), Value::String(message.to_string()));
            for (k, v) in context().lock().unwrap_or_else(|p| p.into_inner()).iter() {
                m.insert(k.clone(), v.clone());
            }
            m.extend(fields);
            format!("{}\n", Value::Object(m))
        }
    };
    write_stderr(&crate::redact::redact(&text));
}

/// Fields every JSON line of this process carries (the `run` command's run id and period,
/// a backfill's id), also lines logged outside a run's span (the engine's own threads).
fn context() -> &'static Mutex<Map<String, Value>> {
    static CONTEXT: OnceLock<Mutex<Map<String, Value>>> = OnceLock::new();
    CONTEXT.get_or_init(|| Mutex::new(Map::new()))
}

/// Adds a field to every JSON line from now on (a span's own value wins where both exist).
pub fn set_context(key: &str, value: &str) {
    context()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.to_string(), Value::String(value.to_string()));
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The progress line of a run on a terminal, while one is drawn.
fn progress() -> &'static Mutex<Option<Progress>> {
    static BAR: OnceLock<Mutex<Option<Progress>>> = OnceLock::new();
    BAR.get_or_init(|| Mutex::new(None))
}

struct Progress {
    bar: indicatif::ProgressBar,
    done: u64,
}

fn write_stderr(text: &str) {
    let guard = progress().lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(p) => p.bar.suspend(|| {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }),
        None => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// A `MakeWriter` for the log subscriber: each log line is redacted and written whole, around
/// the progress line.
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

/// One log event's text, redacted and written when dropped.
pub struct RedactingLine {
    buf: Vec<u8>,
}

impl Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        write_stderr(&crate::redact::redact(&String::from_utf8_lossy(&self.buf)));
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine { buf: Vec::new() }
    }
}

/// Collects an event's or a span's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

/// A span's fields as JSON, kept in its extensions for [`JsonLine`].
struct SpanFields(Map<String, Value>);

/// Records every span's fields (run_id, period, backfill_id, ...) as JSON.
struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut m = Map::new();
        attrs.record(&mut Fields(&mut m));
        span.extensions_mut().insert(SpanFields(m));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(m)) = ext.get_mut::<SpanFields>() {
            values.record(&mut Fields(m));
        }
    }
}

/// One JSON object per event: timestamp, level, target, the spans' fields, the event's fields.
struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut m = Map::new();
        m.insert("timestamp".into(), Value::String(now()));
        m.insert("level".into(), Value::String(meta.level().to_string()));
        m.insert("target".into(), Value::String(meta.target().to_string()));
        for (k, v) in context().lock().unwrap_or_else(|p| p.into_inner()).iter() {
            m.insert(k.clone(), v.clone());
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    m.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut Fields(&mut m));
        writeln!(writer, "{}", Value::Object(m))
    }
}

/// Draws the progress line from the step events.
struct ProgressLayer;

/// What a step event says.
#[derive(Default)]
struct StepEvent {
    step: Option<String>,
    total: Option<u64>,
}

impl Visit for StepEvent {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.step = Some(value.to_string());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "total_steps" {
            self.total = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "total_steps" {
            self.total = u64::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber> Layer<S> for ProgressLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if NO_RUN_PROGRESS.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut e = StepEvent::default();
        event.record(&mut e);
        let mut guard = progress().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(total) = e.total {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{elapsed_precise} [{pos}/{len}] {msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            *guard = Some(Progress { bar, done: 0 });
        } else if let (Some(step), Some(p)) = (e.step, guard.as_mut()) {
            p.done += 1;
            p.bar.set_position(p.done);
            p.bar.set_message(step);
            if p.bar.length().is_some_and(|n| p.done >= n) {
                p.bar.finish_and_clear();
                *guard = None;
            }
        }
    }
}

static NO_RUN_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// No per-run progress line from now on (a backfill draws its own, per period).
pub fn suppress_run_progress() {
    NO_RUN_PROGRESS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Ends the progress line, if one is drawn (at the end of a run, whatever happened).
pub fn finish_progress() {
    let mut guard = progress().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = guard.take() {
        p.bar.finish_and_clear();
    }
}
