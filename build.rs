//! Compiles the repository's default job into the binary: `pipeline.yaml` and every SQL stage
//! under `sql/`, so `crm-pipeline` runs (and `crm-pipeline init` writes them out) from any
//! folder. Generates `$OUT_DIR/builtin_sql.rs`, a sorted list of (path under sql/, text).

use std::path::{Path, PathBuf};

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            sql_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "sql") {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let sql = root.join("sql");
    println!("cargo:rerun-if-changed=pipeline.yaml");
    println!("cargo:rerun-if-changed=sql");
    let mut files = Vec::new();
    sql_files(&sql, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Every SQL stage of the built-in job: (path under `sql/`, text).\npub const SQL: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&sql)
            .expect("under sql/")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("builtin_sql.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
