//! The default job, compiled into the binary: the repository's `pipeline.yaml` and `sql/` as
//! they were when it was built (`build.rs`). With no `--config` and no `./pipeline.yaml`, the
//! job runs this definition; `crm-pipeline init DIR` writes it out for a team to customise.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/builtin_sql.rs"));

/// The built-in job definition's text.
pub const PIPELINE_YAML: &str = include_str!("../pipeline.yaml");

/// The name the built-in definition goes by in messages and run records.
pub const FILE: &str = "<built-in>/pipeline.yaml";

/// Whether a definition's file is the built-in one.
pub fn is_built_in(file: &Path) -> bool {
    file == Path::new(FILE)
}

/// Writes the built-in job (`pipeline.yaml` and `sql/`) into `dir`, creating it; refuses to
/// overwrite a file that exists. Returns the files written.
pub fn write_to(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![(dir.join("pipeline.yaml"), PIPELINE_YAML)];
    files.extend(
        SQL.iter()
            .map(|(rel, text)| (dir.join("sql").join(rel), *text)),
    );
    if let Some((existing, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Error::Usage(format!(
            "{} exists; `init` writes a new job definition and never overwrites one: choose an empty folder",
            existing.display()
        )));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Usage(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, text)
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_job_holds_every_stage_of_the_repository() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let mut on_disk = Vec::new();
        for layer in ["staging", "intermediate", "marts"] {
            for e in std::fs::read_dir(dir.join(layer)).unwrap().flatten() {
                on_disk.push(format!("{layer}/{}", e.file_name().to_string_lossy()));
            }
        }
        on_disk.sort();
        let built_in: Vec<String> = SQL.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(built_in, on_disk);
        assert!(PIPELINE_YAML.contains("sources:"));
    }

    #[test]
    fn init_writes_the_job_and_never_overwrites_it() {
        let tmp = tempfile::tempdir().unwrap();
        let written = write_to(tmp.path()).unwrap();
        assert!(written.len() > 10);
        assert!(tmp.path().join("sql/staging/stg_orders.sql").is_file());
        let err = write_to(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("never overwrites"), "{err}");
    }
}
