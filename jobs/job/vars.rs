//! Variables: `${name}` in locations and store options, from `vars:` and the command line
//! (`--raw`, `--warehouse`, `--var name=value`), and `${env:NAME}` from the environment.

use std::collections::BTreeMap;

use crate::template::substitute;

/// The variables of a job, after the command line's overrides.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// The variables of `vars:` with `overrides` on top.
    pub fn new(file: &BTreeMap<String, String>, overrides: &BTreeMap<String, String>) -> Self {
        let mut values = file.clone();
        values.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self { values }
    }

    /// Substitutes `${var}` and `${env:VAR}` references in `text`.
    pub fn resolve(&self, text: &str) -> Result<String, String> {
        substitute(text, |name| {
            if let Some(var) = name.strip_prefix("env:") {
                std::env::var(var).map_err(|_| format!("environment variable `{var}` is not set"))
            } else {
                self.values.get(name).cloned().ok_or_else(|| {
                    format!("unknown variable `${{{name}}}`; define it under `vars:` or pass --var {name}=...")
                })
            }
        })
    }

    /// Every variable, for the configuration hash.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.values.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitute_handles_escapes_and_env() {
        assert_eq!(substitute("a$$b", |_| Ok(String::new())).unwrap(), "a$b");
        assert_eq!(
            substitute("${x}/y", |n| Ok(n.to_uppercase())).unwrap(),
            "X/y"
        );
        assert!(substitute("${x", |_| Ok(String::new())).is_err());
    }

    #[test]
    fn overrides_win_over_the_file() {
        let file = BTreeMap::from([("raw".to_string(), "/r".to_string())]);
        let cli = BTreeMap::from([("raw".to_string(), "s3://b/raw".to_string())]);
        let v = Vars::new(&file, &cli);
        assert_eq!(v.resolve("${raw}/orders/").unwrap(), "s3://b/raw/orders/");
        assert!(
            v.resolve("${nope}")
                .unwrap_err()
                .contains("unknown variable")
        );
    }
}
