//! The `crm-pipeline` command: a thin shell over the library (flags -> a validated plan ->
//! execution). `crm-pipeline --help` and `crm-pipeline <command> --help` are the reference.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// `eprintln!` through [`crm_pipeline::redact`]: no secret reaches the terminal or a log file.
macro_rules! eprintln_redacted {
    ($($t:tt)*) => {
        eprintln!("{}", crm_pipeline::redact::redact(&format!($($t)*)))
    };
}

/// `println!` through [`crm_pipeline::redact`] (the summary line included).
macro_rules! println_redacted {
    ($($t:tt)*) => {
        println!("{}", crm_pipeline::redact::redact(&format!($($t)*)))
    };
}

use crm_pipeline::error::{Error, Result, exit_code};
use crm_pipeline::generate::{GenerateOptions, OutputFormat};
use crm_pipeline::job::{Job, Overrides};
use crm_pipeline::period::Period;
use crm_pipeline::run::{self, RunOptions};
use crm_pipeline::storage::Location;

/// Batch CRM data-warehouse job: raw CRM extracts in, customer features, lifetime value,
/// segments and positioning out, as Hive-partitioned Parquet.
#[derive(Parser, Debug)]
#[command(
    name = "crm-pipeline",
    version,
    about,
    long_about = None,
    max_term_width = 100,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// The exit codes, in every command's `--help` (README, "Exit codes").
const EXIT_CODES: &str = "\
The job definition: --config FILE (or CRM_PIPELINE_CONFIG); without it ./pipeline.yaml, else the
job built into this binary (`crm-pipeline init DIR` writes it out to customise).

Exit codes:
  0  success: every output partition of the period was replaced, all tables together
  1  internal error (a bug): nothing published
  2  configuration or usage error (pipeline.yaml, SQL, checks, flags): retrying will not help
  3  data-quality failure or a refused publish gate: nothing published, retrying will not help
  4  a source or the warehouse could not be read or written, or another run holds the period's
     lock: retry later
The last line on stdout is a one-line JSON summary.";

#[derive(Copy, Clone, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    fn lib(self) -> crm_pipeline::logging::LogFormat {
        match self {
            LogFormat::Text => crm_pipeline::logging::LogFormat::Text,
            LogFormat::Json => crm_pipeline::logging::LogFormat::Json,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute one period and publish its partitions.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Run every period of a range, one idempotent run per period (resumable).
    #[command(after_help = EXIT_CODES)]
    Backfill(BackfillArgs),
    /// Check the job definition, the SQL stages and the sources' headers without running.
    Validate(JobArgs),
    /// Print the stage and model DAG in run order, and the outputs.
    Plan(JobArgs),
    /// Write sample extracts with known ground truth.
    Generate(GenerateArgs),
    /// Generate sample data if absent, run its latest complete period locally, summarise.
    Demo(DemoArgs),
    /// Write the built-in job definition (pipeline.yaml and sql/) into a folder, to customise.
    Init(InitArgs),
    /// Write the period's HTML report from its published tables:
    /// `<warehouse>/_reports/period=<P>/index.html` (or, with --run-id, a failed run's report
    /// from its record: `_reports/runs/<run_id>/index.html`), and the index of every report.
    Report(ReportArgs),
    /// Delete the files of the Delta output tables that no version inside the retention
    /// references: replaced partitions' old files and rolled-back runs' files. Versions older
    /// than the retention can no longer be time-travelled to. Plain Parquet tables need none.
    Vacuum(VacuumArgs),
    /// Run a Ballista scheduler or executor from this binary, for `--engine ballista`
    /// (infra/README.md): the driver, the scheduler and the executors are one image and one
    /// version; an executor refuses the tasks of a driver of another version.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// A Ballista scheduler: plans each stage into tasks for the executors.
    Scheduler(SchedulerArgs),
    /// A Ballista executor: registers with the scheduler and runs its tasks.
    Executor(ExecutorArgs),
}

#[derive(Args, Debug)]
struct SchedulerArgs {
    /// The address to listen on (the driver's --scheduler is df://<this>).
    #[arg(long, env = "CRM_SCHEDULER_BIND", default_value = "127.0.0.1:50050")]
    bind: std::net::SocketAddr,
    /// The host name others reach the scheduler under (default: the bind address).
    #[arg(long, env = "CRM_SCHEDULER_EXTERNAL_HOST")]
    external_host: Option<String>,
    /// Seconds without a heartbeat after which an executor is taken for lost and its tasks run
    /// elsewhere (default: Ballista's 180). Keep it above the executors' --heartbeat-seconds.
    #[arg(long, env = "CRM_SCHEDULER_EXECUTOR_TIMEOUT_SECONDS")]
    executor_timeout_seconds: Option<u64>,
}

#[derive(Args, Debug)]
struct ExecutorArgs {
    /// The scheduler to register with.
    #[arg(long, env = "CRM_SCHEDULER", default_value = "df://127.0.0.1:50050")]
    scheduler: String,
    /// The address of the executor's Flight service (results and shuffle data).
    #[arg(long, env = "CRM_EXECUTOR_BIND", default_value = "127.0.0.1:50051")]
    bind: std::net::SocketAddr,
    /// The port of its gRPC service (default: the Flight port + 1).
    #[arg(long, env = "CRM_EXECUTOR_GRPC_PORT")]
    grpc_port: Option<u16>,
    /// The host name the scheduler, the driver and other executors reach it under (default:
    /// the bind address; in a container, its service or pod name).
    #[arg(long, env = "CRM_EXECUTOR_EXTERNAL_HOST")]
    external_host: Option<String>,
    /// Tasks run at once (default: the cores).
    #[arg(long, env = "CRM_EXECUTOR_CONCURRENT_TASKS")]
    concurrent_tasks: Option<usize>,
    /// Where shuffle files and spills go (default: the system's temporary directory).
    #[arg(long, env = "CRM_EXECUTOR_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler (default: Ballista's 60).
    #[arg(long, env = "CRM_EXECUTOR_HEARTBEAT_SECONDS")]
    heartbeat_seconds: Option<u64>,
}

#[derive(Args, Debug)]
struct VacuumArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Keep every file a version of the last this many hours references (Delta's default:
    /// 168, one week). Shorter than a table's `delta.deletedFileRetentionDuration` is refused
    /// unless --allow-short-retention.
    #[arg(long, default_value_t = 168)]
    retention_hours: u64,
    /// Allow a retention shorter than the tables' configured one (readers of older versions
    /// that are still running may fail).
    #[arg(long)]
    allow_short_retention: bool,
    /// Only list what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Only these output tables (repeatable; default: every output).
    #[arg(long = "table", value_name = "TABLE")]
    tables: Vec<String>,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// The folder to write the job definition into (created; existing files are never
    /// overwritten).
    dir: PathBuf,
}

#[derive(Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The published period to report on (e.g. 2024-06 for the month grain).
    #[arg(long, required_unless_present = "run_id", conflicts_with = "run_id")]
    period: Option<String>,
    /// A failed run to report on, from its run record.
    #[arg(long)]
    run_id: Option<String>,
}

#[derive(Args, Debug, Clone)]
struct JobArgs {
    /// The job definition (default: ./pipeline.yaml if there is one, else the built-in job).
    #[arg(short, long, env = "CRM_PIPELINE_CONFIG")]
    config: Option<PathBuf>,
    /// Location of the raw extracts (sets `${raw}`).
    #[arg(long)]
    raw: Option<String>,
    /// Location of the warehouse (sets `${warehouse}`).
    #[arg(long)]
    warehouse: Option<String>,
    /// Any other variable, as name=value (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Every output table's format, in place of the definition's `table_format` (and the
    /// outputs' own `format`): parquet or delta.
    #[arg(long, value_name = "FORMAT", value_parser = parse_table_format)]
    table_format: Option<crm_pipeline::publish::TableFormat>,
}

fn parse_table_format(s: &str) -> std::result::Result<crm_pipeline::publish::TableFormat, String> {
    match s {
        "parquet" => Ok(crm_pipeline::publish::TableFormat::Parquet),
        "delta" => Ok(crm_pipeline::publish::TableFormat::Delta),
        _ => Err(format!("`{s}`: use parquet or delta")),
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The period to compute (e.g. 2024-06 for the month grain), as of its last day.
    #[arg(long, conflicts_with = "as_of", required_unless_present = "as_of")]
    period: Option<String>,
    /// Compute as of this date (YYYY-MM-DD); the period is the one containing it.
    #[arg(long)]
    as_of: Option<String>,
    /// Run id to use (default: UTC time plus a random suffix); orchestrators may pass theirs.
    #[arg(long)]
    run_id: Option<String>,
    /// Publish partitions even when they have no rows.
    #[arg(long)]
    allow_empty: bool,
    #[command(flatten)]
    gates: GateArgs,
    /// After a successful publish, write the period's HTML report (see `report`); after a
    /// failed run, the failed run's report.
    #[arg(long)]
    report: bool,
    /// Where the SQL stages run: `local` (this process), `ballista` (a Ballista cluster; needs
    /// --scheduler) or `ballista-standalone` (an in-process cluster, for tests and demos).
    /// Overrides `engine.kind`.
    #[arg(long, value_parser = ["local", "ballista", "ballista-standalone"])]
    engine: Option<String>,
    /// The Ballista scheduler, df://host:port (port 50050 if omitted); implies --engine
    /// ballista. Overrides `engine.scheduler`.
    #[arg(long, value_name = "df://HOST:PORT")]
    scheduler: Option<String>,
}

#[derive(Args, Debug)]
struct BackfillArgs {
    #[command(flatten)]
    job: JobArgs,
    /// First period of the range (e.g. 2023-01).
    #[arg(long)]
    from: String,
    /// Last period of the range, inclusive (e.g. 2024-06).
    #[arg(long)]
    to: String,
    /// Periods computed at a time; a period still waits for its predecessor's publish before
    /// reading the previous partitions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Skip periods already published (their latest run succeeded, no lock is left, every
    /// output partition has files); re-run the same command with it to resume.
    #[arg(long, conflicts_with = "rerun_failed")]
    only_missing: bool,
    /// Run only periods whose latest run failed or was killed.
    #[arg(long)]
    rerun_failed: bool,
    /// Publish partitions even when they have no rows.
    #[arg(long)]
    allow_empty: bool,
    #[command(flatten)]
    gates: GateArgs,
}

/// The publish gate's overrides (README "Publishing guarantees"): each opens one gate.
#[derive(Args, Debug, Clone, Copy)]
struct GateArgs {
    /// Publish even if a table's partition would lose more than `gate.max_shrink` of its rows
    /// (or customer_features of its revenue), e.g. after a corrected extract.
    #[arg(long)]
    allow_shrink: bool,
    /// Publish a period that starts more than `gate.max_days_beyond_data` days after the
    /// newest valid order.
    #[arg(long)]
    allow_beyond_data: bool,
    /// Compute a period that has not closed yet (its as-of date is today or later).
    #[arg(long)]
    allow_open_period: bool,
}

impl GateArgs {
    fn allowances(self) -> crm_pipeline::quality::gate::Allowances {
        crm_pipeline::quality::gate::Allowances {
            open_period: self.allow_open_period,
            beyond_data: self.allow_beyond_data,
            shrink: self.allow_shrink,
        }
    }
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Number of customers.
    #[arg(long, default_value_t = 10_000)]
    customers: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the extracts (a local path or an object-store URL).
    #[arg(long)]
    out: String,
    /// First day of the history.
    #[arg(long, default_value = "2022-01-01")]
    start: NaiveDate,
    /// Last day of the history.
    #[arg(long, default_value = "2024-12-31")]
    end: NaiveDate,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Format {
    Csv,
    CsvGz,
    Parquet,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Where sample data and the warehouse go.
    #[arg(long, default_value = "demo")]
    dir: PathBuf,
    /// Customers to generate when no sample data exists yet.
    #[arg(long, default_value_t = 20_000)]
    customers: u64,
    /// The job definition (default: ./pipeline.yaml if there is one, else the built-in job).
    #[arg(short, long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    crm_pipeline::logging::init(cli.log_format.lib(), cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::INTERNAL as u8);
        }
    };
    let code = runtime.block_on(dispatch(cli.command, cli.log_format.lib()));
    ExitCode::from(code as u8)
}

/// Prints a command's error: a line for people, or a JSON log line in JSON mode.
fn report_error(format: crm_pipeline::logging::LogFormat, e: &Error) {
    let mut fields = serde_json::Map::new();
    fields.insert("exit_code".into(), e.exit_code().into());
    fields.insert("category".into(), e.category().into());
    crm_pipeline::logging::line(format, "error", &format!("error: {e}"), fields);
}

async fn dispatch(command: Command, format: crm_pipeline::logging::LogFormat) -> i32 {
    let result = match command {
        Command::Run(a) => return cmd_run(a, format).await,
        Command::Backfill(a) => cmd_backfill(a, format).await,
        Command::Init(a) => cmd_init(a),
        Command::Validate(a) => cmd_validate(a).await,
        Command::Plan(a) => cmd_plan(a),
        Command::Generate(a) => cmd_generate(a).await,
        Command::Demo(a) => cmd_demo(a).await,
        Command::Report(a) => cmd_report(a).await,
        Command::Vacuum(a) => cmd_vacuum(a).await,
        Command::Cluster(c) => cmd_cluster(c).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(format, &e);
            e.exit_code()
        }
    }
}

fn cmd_init(a: InitArgs) -> Result<i32> {
    let files = crm_pipeline::builtin::write_to(&a.dir)?;
    eprintln_redacted!(
        "wrote the job definition into {} ({} files): edit pipeline.yaml and the SQL under sql/, then
  cd {} && crm-pipeline validate --raw <your extracts> --warehouse <your warehouse>",
        a.dir.display(),
        files.len(),
        a.dir.display()
    );
    Ok(exit_code::SUCCESS)
}

/// The job definition of the command line: read, parsed and resolved once, with the flags'
/// overrides. Also returns the file's text (for the run record's hash).
fn load(job: &JobArgs) -> Result<(Job, String)> {
    load_with(job, |_| Ok(()))
}

/// [`load`], with more overrides (`--engine`, `--scheduler`).
fn load_with(
    job: &JobArgs,
    more: impl FnOnce(&mut Overrides) -> Result<()>,
) -> Result<(Job, String)> {
    let mut o = Overrides::default();
    if let Some(r) = &job.raw {
        o.vars.insert("raw".into(), r.clone());
    }
    if let Some(w) = &job.warehouse {
        o.vars.insert("warehouse".into(), w.clone());
    }
    for v in &job.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--var `{v}` must be NAME=VALUE")))?;
        o.vars.insert(k.trim().to_string(), val.to_string());
    }
    o.table_format = job.table_format;
    more(&mut o)?;
    // --config (or CRM_PIPELINE_CONFIG), else ./pipeline.yaml, else the built-in job
    let file = job
        .config
        .clone()
        .or_else(|| Some(PathBuf::from("pipeline.yaml")).filter(|p| p.is_file()));
    let (spec, text) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(
                    path.display(),
                    format!("cannot read the job definition: {e}"),
                )
            })?;
            let spec = crm_pipeline::job::JobSpec::from_yaml(&text, &path, &o.vars)?;
            (spec, text)
        }
        None => {
            let spec = crm_pipeline::job::JobSpec::built_in(&o.vars)?;
            (spec, crm_pipeline::builtin::PIPELINE_YAML.to_string())
        }
    };
    Ok((Job::resolve(spec, &o)?, text))
}

/// `run`: the last line on stdout is always the JSON summary, also when the job definition or
/// the flags are refused before the run starts (orchestrators read it).
async fn cmd_run(a: RunArgs, format: crm_pipeline::logging::LogFormat) -> i32 {
    match run_command(a, format).await {
        Ok(code) => code,
        Err(e) => {
            report_error(format, &e);
            let summary = serde_json::json!({
                "status": "failed",
                "exit_code": e.exit_code(),
                "error": e.to_string(),
            });
            println_redacted!("{summary}");
            e.exit_code()
        }
    }
}

async fn run_command(a: RunArgs, format: crm_pipeline::logging::LogFormat) -> Result<i32> {
    if let Some(id) = &a.run_id
        && (id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
    {
        return Err(Error::Usage(format!(
            "--run-id `{id}` may only use letters, digits, '.', '_' and '-' (it names folders in the warehouse)"
        )));
    }
    // every log line of this process carries the run's id and period
    let run_id = a.run_id.clone().unwrap_or_else(run::new_run_id);
    crm_pipeline::logging::set_context("run_id", &run_id);
    if let Some(p) = a.period.as_ref().or(a.as_of.as_ref()) {
        crm_pipeline::logging::set_context("period", p);
    }
    let (job, text) = load_with(&a.job, |o| {
        // checked as the engine block is: a flag that names no usable engine is a usage error
        let mut flags = crm_pipeline::engine::EngineConfig::default();
        crm_pipeline::engine::apply_flags(&mut flags, a.engine.as_deref(), a.scheduler.as_deref())?;
        if a.engine.is_some() {
            o.engine = Some(flags.kind);
        }
        o.scheduler = a.scheduler.clone();
        Ok(())
    })?;
    let grain = job.spec.period.grain;
    let period = match (&a.period, &a.as_of) {
        (Some(p), _) => Period::parse(grain, p)?,
        (None, Some(d)) => Period::from_as_of(grain, d)?,
        (None, None) => return Err(Error::Usage("pass --period or --as-of".into())),
    };
    crm_pipeline::logging::set_context("period", &period.label());
    let opts = RunOptions {
        period,
        run_id,
        allow_empty: a.allow_empty,
        allow: a.gates.allowances(),
        command: std::env::args().collect(),
        config_text: text,
        previous_ready: None,
    };
    let (results, outcome) = run::run(&job, &opts).await;
    crm_pipeline::logging::finish_progress();
    let mut summary = results.summary();
    if outcome.is_ok() && a.report {
        // the tables are published whatever happens to the report: a failed report is a
        // warning (exit 0), and `crm-pipeline report --period P` writes it again later
        let (key, value) = match write_report(&job, &results.period).await {
            Ok(url) => ("report", url),
            Err(e) => {
                eprintln_redacted!(
                    "warning: the tables were published but the report failed: {e}; rerun `crm-pipeline report --period {}`",
                    results.period
                );
                ("report_error", e.to_string())
            }
        };
        summary[key] = serde_json::Value::String(value);
    }
    if outcome.is_err() && a.report && !results.run_results.is_empty() {
        // a failed run's report, from its record, beside (never over) the period's report
        let (key, value) = match write_failed_report(&job, &results.run_id).await {
            Ok(url) => ("report", url),
            Err(e) => ("report_error", e.to_string()),
        };
        summary[key] = serde_json::Value::String(value);
    }
    if let Err(e) = &outcome {
        report_error(format, e);
    }
    println_redacted!("{summary}");
    Ok(outcome
        .map(|_| exit_code::SUCCESS)
        .unwrap_or_else(|e| e.exit_code()))
}

async fn cmd_backfill(a: BackfillArgs, format: crm_pipeline::logging::LogFormat) -> Result<i32> {
    use crm_pipeline::backfill::{self, BackfillOptions, Progress, Selection};
    let (cfg, text) = load(&a.job)?;
    let backfill_id = backfill::new_backfill_id();
    crm_pipeline::logging::set_context("backfill_id", &backfill_id);
    let opts = BackfillOptions {
        from: Period::parse(cfg.spec.period.grain, &a.from)?,
        to: Period::parse(cfg.spec.period.grain, &a.to)?,
        jobs: usize::from(a.jobs),
        selection: match (a.only_missing, a.rerun_failed) {
            (true, _) => Selection::OnlyMissing,
            (_, true) => Selection::RerunFailed,
            _ => Selection::All,
        },
        allow_empty: a.allow_empty,
        allow: a.gates.allowances(),
        backfill_id,
        command: std::env::args().collect(),
        config_text: text,
        progress: match format {
            crm_pipeline::logging::LogFormat::Json => Progress::Json,
            _ if std::io::stderr().is_terminal() => Progress::Bar,
            _ => Progress::Lines,
        },
    };
    // the backfill draws its own progress, per period
    crm_pipeline::logging::suppress_run_progress();
    let (results, outcome) = backfill::backfill(Arc::new(cfg), &opts).await;
    if !results.periods.is_empty() && format == crm_pipeline::logging::LogFormat::Text {
        eprint!("\n{}", crm_pipeline::redact::redact(&results.table()));
    }
    if let Err(e) = &outcome {
        report_error(format, e);
    }
    println_redacted!("{}", results.summary());
    Ok(results.exit_code)
}

async fn cmd_validate(a: JobArgs) -> Result<i32> {
    let (job, _) = load(&a)?;
    let plan = run::plan(&job)?;
    // the SQL planned over empty extracts, the models run on empty inputs, and every check's
    // table and columns resolved: a typo is found here, not after a run's SQL
    let schemas = run::plan::table_schemas(&job).await?;
    run::plan::resolve_checks(&job, &schemas)?;
    let mut problems = Vec::new();
    for src in &job.sources {
        match crm_pipeline::extract::check_source(src).await {
            Ok(summary) => println_redacted!("source {}: {summary}", src.name),
            Err(e) => problems.push(e),
        }
    }
    println_redacted!(
        "{} stages and models plan cleanly; {} outputs declared",
        plan.steps.len(),
        job.outputs.len()
    );
    if problems.is_empty() {
        println_redacted!("valid");
        Ok(exit_code::SUCCESS)
    } else {
        for p in &problems {
            eprintln_redacted!("error: {p}");
        }
        Ok(problems
            .iter()
            .map(Error::exit_code)
            .max()
            .unwrap_or(exit_code::INTERNAL))
    }
}

fn cmd_plan(a: JobArgs) -> Result<i32> {
    let (job, _) = load(&a)?;
    let plan = run::plan(&job)?;
    println_redacted!("{:<4} {:<28} {:<18} depends on", "#", "step", "kind");
    for (i, s) in plan.steps.iter().enumerate() {
        let deps = plan
            .depends_on
            .get(s.name())
            .map(|d| d.iter().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let raw: Vec<String> = s
            .inputs()
            .into_iter()
            .filter(|i| i.starts_with("raw.") || i.starts_with("previous."))
            .collect();
        let all = [deps, raw.join(", ")]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        println_redacted!("{:<4} {:<28} {:<18} {}", i + 1, s.name(), s.kind(), all);
    }
    println_redacted!("\noutputs (partitioned by period):");
    for o in &job.outputs {
        println_redacted!(
            "  {:<24} from {:<24} {} columns{}",
            o.name,
            o.config.from,
            o.columns.len(),
            if o.config.enabled { "" } else { " (disabled)" }
        );
    }
    Ok(exit_code::SUCCESS)
}

/// Writes the report of `period` into the job's warehouse; returns its URL.
async fn write_report(job: &Job, period: &str) -> Result<String> {
    crm_pipeline::report::write_report_with(job.layout.warehouse(), period, &job.spec.report).await
}

/// Writes the report of the failed run `run_id`; returns its URL.
async fn write_failed_report(job: &Job, run_id: &str) -> Result<String> {
    crm_pipeline::report::write_failed_report(job.layout.warehouse(), run_id, &job.spec.report)
        .await
}

async fn cmd_report(a: ReportArgs) -> Result<i32> {
    let (cfg, _) = load(&a.job)?;
    let url = match (&a.period, &a.run_id) {
        (Some(p), _) => {
            write_report(&cfg, &Period::parse(cfg.spec.period.grain, p)?.label()).await?
        }
        (None, Some(id)) => write_failed_report(&cfg, id).await?,
        (None, None) => return Err(Error::Usage("pass --period or --run-id".into())),
    };
    println_redacted!("{url}");
    Ok(exit_code::SUCCESS)
}

async fn cmd_cluster(c: ClusterCommand) -> Result<i32> {
    use crm_pipeline::engine::cluster;
    match c {
        ClusterCommand::Scheduler(a) => {
            cluster::scheduler(cluster::SchedulerOptions {
                bind: a.bind,
                external_host: a.external_host,
                executor_timeout_seconds: a.executor_timeout_seconds,
            })
            .await?
        }
        ClusterCommand::Executor(a) => {
            cluster::executor(cluster::ExecutorOptions {
                scheduler: a.scheduler,
                bind: a.bind,
                grpc_port: a.grpc_port,
                external_host: a.external_host,
                concurrent_tasks: a.concurrent_tasks,
                work_dir: a.work_dir,
                heartbeat_seconds: a.heartbeat_seconds,
            })
            .await?
        }
    }
    Ok(exit_code::SUCCESS)
}

async fn cmd_vacuum(a: VacuumArgs) -> Result<i32> {
    let (job, _) = load(&a.job)?;
    for t in &a.tables {
        if job.output(t).is_none() {
            return Err(Error::Usage(format!("--table {t}: no such output table")));
        }
    }
    let mut done = Vec::new();
    for out in &job.outputs {
        if !a.tables.is_empty() && !a.tables.contains(&out.name) {
            continue;
        }
        let loc = job.layout.table(&out.name);
        if let Some(v) = crm_pipeline::publish::delta::vacuum(
            &loc,
            &out.name,
            a.retention_hours,
            a.dry_run,
            !a.allow_short_retention,
        )
        .await?
        {
            done.push(v);
        }
    }
    let summary = serde_json::json!({
        "retention_hours": a.retention_hours,
        "dry_run": a.dry_run,
        "tables": done,
    });
    println_redacted!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    Ok(exit_code::SUCCESS)
}

fn format_of(f: Format) -> OutputFormat {
    match f {
        Format::Csv => OutputFormat::Csv,
        Format::CsvGz => OutputFormat::CsvGzip,
        Format::Parquet => OutputFormat::Parquet,
    }
}

async fn cmd_generate(a: GenerateArgs) -> Result<i32> {
    if a.end <= a.start {
        return Err(Error::Usage(format!(
            "--end {} must be after --start {}",
            a.end, a.start
        )));
    }
    let out = Location::parse(&a.out)?;
    let opts = GenerateOptions {
        customers: a.customers,
        seed: a.seed,
        start: a.start,
        end: a.end,
        format: format_of(a.format),
        ..GenerateOptions::default()
    };
    let summary =
        crm_pipeline::generate::generate(&opts, Arc::clone(out.store()), out.prefix()).await?;
    println_redacted!("{summary}");
    Ok(exit_code::SUCCESS)
}

async fn cmd_demo(a: DemoArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Error::Usage(format!("cannot create {}: {e}", a.dir.display())))?;
    let raw_dir = a.dir.join("raw");
    let warehouse_dir = a.dir.join("warehouse");
    let raw = Location::parse(&raw_dir.display().to_string())?;
    let manifest =
        match crm_pipeline::generate::read_manifest(Arc::clone(raw.store()), raw.prefix()).await? {
            Some(m) => {
                eprintln_redacted!(
                    "using the sample data in {} ({} customers)",
                    raw_dir.display(),
                    m.customers
                );
                m
            }
            None => {
                eprintln_redacted!(
                    "generating {} customers of sample data into {} ...",
                    a.customers,
                    raw_dir.display()
                );
                let opts = GenerateOptions {
                    customers: a.customers,
                    ..GenerateOptions::default()
                };
                crm_pipeline::generate::generate(&opts, Arc::clone(raw.store()), raw.prefix())
                    .await?;
                crm_pipeline::generate::read_manifest(Arc::clone(raw.store()), raw.prefix())
                    .await?
                    .ok_or_else(|| Error::Internal("the generator wrote no manifest".into()))?
            }
        };
    let job = JobArgs {
        config: a.config.clone(),
        raw: Some(raw_dir.display().to_string()),
        warehouse: Some(warehouse_dir.display().to_string()),
        vars: Vec::new(),
        table_format: None,
    };
    let (mut cfg, text) = load(&job)?;
    // the report shows the CLV model's holdout accuracy: refit 90 days back and score them
    if cfg.spec.models.clv.holdout_days == 0 {
        cfg.spec.models.clv.holdout_days = 90;
    }
    // the latest complete period of the sample history
    let end = Period::containing(cfg.spec.period.grain, manifest.end);
    let period = if end.is_complete() {
        Period {
            as_of: end.end,
            ..end
        }
    } else {
        end.previous()
    };
    let opts_for = |period: Period| RunOptions {
        period,
        run_id: run::new_run_id(),
        allow_empty: false,
        allow: Default::default(),
        command: std::env::args().collect(),
        config_text: text.clone(),
        previous_ready: None,
    };
    // the period before it first, so growth, stability and migration have something to compare
    let previous = period.previous();
    eprintln_redacted!("running period {} first ...", previous.label());
    let (prev_results, prev_outcome) = run::run(&cfg, &opts_for(previous)).await;
    if let Err(e) = prev_outcome {
        eprintln_redacted!("error: {e}");
        println_redacted!("{}", prev_results.summary());
        return Ok(e.exit_code());
    }
    if let Err(e) = write_report(&cfg, &prev_results.period).await {
        eprintln_redacted!("  report of {}: not written: {e}", prev_results.period);
    }
    eprintln_redacted!(
        "running period {} (as of {}) ...",
        period.label(),
        period.as_of
    );
    let opts = opts_for(period);
    let (results, outcome) = run::run(&cfg, &opts).await;
    if let Err(e) = &outcome {
        eprintln_redacted!("error: {e}");
    } else {
        eprintln_redacted!(
            "\nwrote {} partitions for period {} in {:.1}s:",
            results.outputs.len(),
            results.period,
            results.seconds
        );
        for o in &results.outputs {
            eprintln_redacted!("  {:<22} {:>9} rows  {}", o.table, o.rows, o.location);
        }
        let quarantined: u64 = results
            .sources
            .iter()
            .flat_map(|s| s.quarantined.values())
            .sum();
        eprintln_redacted!(
            "  quarantined rows: {quarantined} (see the quarantine table for reasons)"
        );
        eprintln_redacted!("  run results: {}", results.run_results);
        match write_report(&cfg, &results.period).await {
            Ok(url) => eprintln_redacted!("  report: {url}"),
            Err(e) => eprintln_redacted!("  report: not written: {e}"),
        }
        eprintln_redacted!(
            "\nquery it, e.g. with DuckDB:\n  SELECT * FROM read_parquet('{}/segment_summary/*/*.parquet', hive_partitioning = true);",
            warehouse_dir.display()
        );
    }
    println_redacted!("{}", results.summary());
    Ok(outcome
        .map(|_| exit_code::SUCCESS)
        .unwrap_or_else(|e| e.exit_code()))
}
