//! Runs where users put it: the binary carries its own job (demo and init from any folder), logs
//! a collector can use (every JSON line with the run's id and period), progress on a terminal,
//! exit codes in `--help`, and documentation that stays true: no link out of the repository,
//! the data contract equal to the code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crm-pipeline"));
    c.env_remove("CRM_PIPELINE_CONFIG")
        .env_remove("CRM_PIPELINE_FAULT")
        .env_remove("CRM_PIPELINE_LOG");
    c
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_init_and_validate_work_from_a_folder_outside_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "--customers", "1500"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        tmp.path()
            .join("demo/warehouse/customer_features/period=2024-12")
            .is_dir()
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            summary["run_results"]
                .as_str()
                .unwrap()
                .trim_start_matches("file://"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        record["config_file"], "<built-in>/pipeline.yaml",
        "the record says the built-in job ran"
    );

    // init writes the job out; validate then reads it from the folder
    let out = bin()
        .args(["init", "job"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(tmp.path().join("job/pipeline.yaml").is_file());
    let again = bin()
        .args(["init", "job"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "init never overwrites");
    let out = bin()
        .args([
            "validate",
            "--raw",
            "../demo/raw",
            "--warehouse",
            "../demo/warehouse",
        ])
        .current_dir(tmp.path().join("job"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_log_line_carries_the_run_id_and_period() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let job = repo_file("pipeline.yaml");
    let common = |args: &[&str]| {
        let mut c = bin();
        c.args(args)
            .arg("--config")
            .arg(&job)
            .arg("--raw")
            .arg(&raw)
            .arg("--warehouse")
            .arg(&wh)
            .args(["--log-format", "json", "-vv"]);
        c.output().unwrap()
    };
    let check = |out: &std::process::Output, keys: &[&str]| -> usize {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut n = 0;
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            for k in keys {
                assert!(v.get(*k).is_some(), "no `{k}` in {line}");
            }
            n += 1;
        }
        n
    };
    let out = common(&["run", "--period", "2024-06", "--run-id", "json-1"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines = check(&out, &["run_id", "period", "level", "message"]);
    assert!(lines > 50, "only {lines} lines at -vv");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"run_id\":\"json-1\""));

    // a failed run's final error is a JSON line too
    let out = common(&["run", "--period", "2030-01", "--run-id", "json-2"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    check(&out, &["run_id", "period"]);
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("\"level\":\"ERROR\"") && last.contains("\"exit_code\":3"),
        "{last}"
    );

    // a backfill's per-period lines are JSON and name their period and run
    let out = common(&[
        "backfill", "--from", "2024-05", "--to", "2024-06", "--jobs", "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    check(&out, &["backfill_id"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let done: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("backfill: period"))
        .collect();
    assert_eq!(done.len(), 2, "{stderr}");
    for l in done {
        assert!(
            l.contains("\"period\":\"2024-0") && l.contains("\"run_id\""),
            "{l}"
        );
    }

    // a definition refused before the run starts still ends with a summary line
    let out = bin()
        .args(["run", "--period", "2024-06", "--config"])
        .arg(tmp.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["exit_code"], 2);
}

#[test]
fn a_run_on_a_terminal_shows_its_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    small_dataset(&raw);
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills the two descriptors; no other pointer is read or written
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: `slave` is an open descriptor this test owns; the child gets its own copy
    let stderr = unsafe { Stdio::from_raw_fd(slave) };
    let mut child = bin()
        .args(["run", "--period", "2024-06", "--config"])
        .arg(repo_file("pipeline.yaml"))
        .arg("--raw")
        .arg(&raw)
        .arg("--warehouse")
        .arg(&wh)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    // SAFETY: `master` is an open descriptor this test owns
    let mut reader = unsafe { std::fs::File::from_raw_fd(master) };
    let reading = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // the pty reports EIO once the child (its last writer) has exited
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let status = child.wait().unwrap();
    let all = String::from_utf8_lossy(&reading.join().unwrap()).to_string();
    assert!(status.success(), "{all}");
    let steps: Vec<&str> = all
        .split(['\r', '\n'])
        // a progress line: "[done/total] step" (the total moves with the job's stages)
        .filter(|l| {
            l.split('[').skip(1).any(|s| {
                s.split_once("] ").is_some_and(|(n, _)| {
                    n.split_once('/').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
                    })
                })
            })
        })
        .collect();
    assert!(
        steps.iter().any(|l| l.contains("stg_orders")),
        "no progress line naming a step: {all:?}"
    );
    assert!(steps.iter().any(|l| l.contains("[1/")), "{all:?}");
}

#[test]
fn help_lists_the_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["backfill", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for code in [
            "0  success",
            "2  configuration",
            "3  data-quality",
            "4  a source",
        ] {
            assert!(help.contains(code), "{args:?} --help lacks `{code}`");
        }
    }
}

/// Every Markdown file of the repository (not the build or the virtual environments).
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if name == "target" || name.starts_with('.') || name == "demo" || name == "data" {
                continue;
            }
            markdown_files(&p, out);
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

#[test]
fn no_link_in_the_repository_points_outside_it() {
    let root = repo_file("");
    let root = root.canonicalize().unwrap();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() >= 5, "{files:?}");
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or("").trim();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let path = f.parent().unwrap().join(target);
            let resolved = path.canonicalize().unwrap_or_else(|_| {
                panic!("{}: the link `{target}` does not resolve", f.display())
            });
            assert!(
                resolved.starts_with(&root),
                "{}: the link `{target}` points outside the repository",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} links checked");
}

/// The rows of the Markdown tables under a `## <heading>` / `### <name>` section: for each
/// `### name`, the first cell of every row of its table.
fn documented_columns(doc: &str, section: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    let Some(start) = doc.find(&format!("## {section}")) else {
        return out;
    };
    let body = &doc[start..];
    let body = &body[2..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut current = None;
    for line in body.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            let name = name.trim().trim_matches('`').to_string();
            current = Some(name.clone());
            out.insert(name, Vec::new());
        } else if line.starts_with('|') && !line.starts_with("|---") {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            if let (Some(name), Some(first)) = (&current, cells.first())
                && first != "column"
            {
                out.get_mut(name).unwrap().push(cells);
            }
        }
    }
    out
}

#[test]
fn the_data_contract_document_matches_the_code() {
    let doc = std::fs::read_to_string(repo_file("docs/contract.md")).unwrap();
    // the raw extracts: every canonical column, required and personal flags as in the code
    let extracts = documented_columns(&doc, "Raw extracts");
    let code: BTreeSet<&str> = crm_pipeline::contract::SOURCES
        .iter()
        .map(|s| s.name)
        .collect();
    let documented: BTreeSet<&str> = extracts.keys().map(String::as_str).collect();
    assert_eq!(documented, code, "extracts documented vs in the contract");
    for s in crm_pipeline::contract::SOURCES {
        let rows = &extracts[s.name];
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        let expected: Vec<&str> = s.columns.iter().map(|c| c.name).collect();
        assert_eq!(names, expected, "columns of extract {}", s.name);
        for (c, row) in s.columns.iter().zip(rows) {
            let flags = row.get(1).cloned().unwrap_or_default();
            assert_eq!(
                flags.contains("required"),
                c.required,
                "{}.{}",
                s.name,
                c.name
            );
            assert_eq!(flags.contains("personal"), c.pii, "{}.{}", s.name, c.name);
            assert_eq!(
                flags.contains("timestamp"),
                c.timestamp,
                "{}.{}",
                s.name,
                c.name
            );
        }
    }
    // the warehouse tables: every output of the default job, every column with its type
    let tables = documented_columns(&doc, "Warehouse tables");
    let job = crm_pipeline::job::Job::load(
        &repo_file("pipeline.yaml"),
        &crm_pipeline::job::Overrides::default(),
    )
    .unwrap();
    let names: BTreeSet<&str> = job.outputs.iter().map(|o| o.name.as_str()).collect();
    let documented: BTreeSet<&str> = tables.keys().map(String::as_str).collect();
    assert_eq!(
        documented, names,
        "tables documented vs pipeline.yaml outputs"
    );
    for o in &job.outputs {
        let rows = &tables[&o.name];
        let mut expected: Vec<(String, String)> = o
            .columns
            .iter()
            .map(|(c, t)| {
                let t = serde_json::to_value(t).unwrap();
                (c.clone(), t.as_str().unwrap().to_string())
            })
            .collect();
        expected.push(("run_id".into(), "string".into()));
        expected.push(("period".into(), "string".into()));
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r[0].clone(), r.get(1).cloned().unwrap_or_default()))
            .collect();
        assert_eq!(got, expected, "columns of table {}", o.name);
    }
}
