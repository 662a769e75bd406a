//! Helpers shared by the configuration's unit tests: loading a TOML snippet
//! or an environment through [`Config::load_layers`], and reading the key of
//! a validation error.

use std::io::Write;
use std::time::Duration;

use super::{Config, ConfigError};

pub const NO_ENV: [(&str, &str); 0] = [];

pub fn write_toml(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().expect("create temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f.flush().expect("flush temp file");
    f
}

pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let f = write_toml(text);
    Config::load_layers(Some(f.path()), NO_ENV)
}

pub fn from_env(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_layers(None, env.iter().copied())
}

pub fn invalid_key(cfg: &Config) -> String {
    match cfg.validate() {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
