//! Shared helpers: write hand-made extracts, run the job, read its tables back.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crm_pipeline::error::Result;
use crm_pipeline::job::{Job, JobSpec, Overrides};
use crm_pipeline::period::Period;
use crm_pipeline::run::{self, RunOptions, RunResults};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// The repository's pipeline.yaml with raw and warehouse pointed at `raw` and `warehouse` (the
/// parsed definition: a test may change it before [`run_period`] resolves it).
pub fn config(raw: &Path, warehouse: &Path) -> JobSpec {
    let vars = [
        ("raw".to_string(), raw.display().to_string()),
        ("warehouse".to_string(), warehouse.display().to_string()),
    ]
    .into_iter()
    .collect();
    JobSpec::load(&repo_file("pipeline.yaml"), &vars).expect("pipeline.yaml loads")
}

/// A definition resolved for a run (with `overrides`, e.g. store options given in code).
pub fn resolve(spec: &JobSpec, overrides: &Overrides) -> Job {
    Job::resolve(spec.clone(), overrides).expect("the job definition resolves")
}

/// A file of the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs one period with a fixed run id.
pub async fn run_period(cfg: &JobSpec, period: &str, run_id: &str) -> (RunResults, Result<()>) {
    let opts = RunOptions {
        period: Period::parse(cfg.period.grain, period).expect("valid period"),
        run_id: run_id.into(),
        allow_empty: false,
        allow: Default::default(),
        command: vec!["test".into()],
        config_text: String::new(),
        previous_ready: None,
    };
    run::run(&resolve(cfg, &Overrides::default()), &opts).await
}

/// Writes `name` (e.g. "orders/part-0.csv") under `dir`.
pub fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

/// Runs a query over one published partition registered as `t`.
pub async fn query(warehouse: &Path, table: &str, period: &str, sql: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    let dir = warehouse.join(format!("{table}/period={period}/"));
    ctx.register_parquet(
        "t",
        dir.display().to_string(),
        ParquetReadOptions::default(),
    )
    .await
    .expect("register");
    ctx.sql(sql)
        .await
        .expect("sql")
        .collect()
        .await
        .expect("collect")
}

/// Batches as a pretty table, for assertions that read like the data.
pub fn pretty(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).expect("format").to_string()
}

/// A small clean dataset: three customers, orders in 2024, one product.
pub fn small_dataset(raw: &Path) {
    write(
        raw,
        "customers/customers.csv",
        "customer_id,email,gender,region,signup_date,updated_at\n\
         C1,a@example.com,F,north,2023-01-01,2023-01-01 00:00:00\n\
         C2,b@example.com,M,south,2023-02-01,2023-02-01 00:00:00\n\
         C3,c@example.com,F,east,2023-03-01,2023-03-01 00:00:00\n",
    );
    write(
        raw,
        "orders/orders.csv",
        "order_id,customer_id,order_ts,total_amount,status,channel\n\
         O1,C1,2024-01-05 10:00:00,100.00,completed,online\n\
         O2,C1,2024-03-05 10:00:00,50.00,completed,store\n\
         O3,C2,2024-02-10 12:00:00,20.00,completed,online\n\
         O4,C1,2024-05-20 09:00:00,70.00,,online\n",
    );
    write(
        raw,
        "products/products.csv",
        "product_id,category,price_tier,list_price,launch_date\nP1,books,standard,10.00,2020-01-01\n",
    );
    write(
        raw,
        "order_items/items.csv",
        "order_id,line_no,product_id,quantity,unit_price,discount,unit_cost\n\
         O1,1,P1,10,10.00,0,6.00\nO2,1,P1,5,10.00,0,6.00\nO3,1,P1,2,10.00,0,6.00\nO4,1,P1,7,10.00,0,6.00\n",
    );
}

/// Writes generated sample extracts to any location URL (a local path, s3://, memory://...).
pub async fn generate_at(location: &str, opts: &crm_pipeline::generate::GenerateOptions) {
    let loc = crm_pipeline::storage::Location::parse(location).expect("valid location");
    crm_pipeline::generate::generate(opts, std::sync::Arc::clone(loc.store()), loc.prefix())
        .await
        .expect("generate");
}

/// Generates `customers` customers of the default history into the folder `raw`.
pub async fn generate_local(raw: &Path, customers: u64, seed: u64) {
    let opts = crm_pipeline::generate::GenerateOptions {
        customers,
        seed,
        ..Default::default()
    };
    generate_at(&raw.display().to_string(), &opts).await;
}

// ---- child processes (servers the tests start: SeaweedFS, a Ballista cluster) ----

/// SIGTERM to the whole process group, SIGKILL after a short grace (SeaweedFS ignores SIGTERM
/// for a while), then reap.
pub fn kill_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals the process group the child leads.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; the group may already be gone (ESRCH is fine).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Free loopback ports: all bound at once (so they differ), then released for a
/// server.
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("binding a loopback port: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading a bound port: {e}"))
}

/// Spawns from a thread that lives as long as the process: PR_SET_PDEATHSIG fires when the
/// spawning thread exits, and test threads come and go.
pub fn spawn_owned(mut cmd: Command) -> std::io::Result<Child> {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("child-owner".into())
        .spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        })?;
    rx.recv()
        .map_err(|e| std::io::Error::other(format!("spawner thread: {e}")))?
}
