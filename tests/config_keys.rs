//! Keeps the configuration template, the documentation and the code in step: every key of
//! `config/standalone.toml` (also the ones shown commented out as `# key = value`) is read by
//! the code (a non-default value changes the loaded `Config`, an unknown key in its section is
//! rejected) and is documented in `docs/configuration.md` as `section.key`; every key the docs
//! list is in the template; the cluster templates use only template keys.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chronik::config::{Config, ConfigError};

/// One key of a template: where it is and the value written for it.
#[derive(Debug, Clone)]
struct TemplateKey {
    /// `""` for top-level keys.
    section: String,
    key: String,
    value: String,
    /// Written as `# key = value` (a documented but unset key).
    commented: bool,
}

impl TemplateKey {
    fn dotted(&self) -> String {
        dotted(&self.section, &self.key)
    }
}

fn dotted(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn is_key(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The keys of a template, in order. `key = value` lines are keys; `# key = value` (one space
/// after `#`) are commented-out keys; `#   key = value` (indented examples inside a comment)
/// are returned separately as example values.
fn template_keys(text: &str) -> (Vec<TemplateKey>, BTreeMap<String, Vec<String>>) {
    let mut section = String::new();
    let mut keys = Vec::new();
    let mut examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_end();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let (body, commented, example) = if let Some(rest) = trimmed.strip_prefix("# ") {
            if rest.starts_with(' ') {
                (rest.trim_start(), true, true)
            } else {
                (rest, true, false)
            }
        } else if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        } else {
            (trimmed, false, false)
        };
        let Some((k, v)) = body.split_once(" = ") else { continue };
        let k = k.trim();
        if !is_key(k) {
            continue;
        }
        let mut value = v.trim().to_string();
        // A multi-line array (the cluster templates' peers).
        if value.starts_with('[') && !value.ends_with(']') {
            for more in lines.by_ref() {
                value.push_str(more.trim());
                if more.trim_end().ends_with(']') {
                    break;
                }
            }
        }
        if example {
            examples.entry(dotted(&section, k)).or_default().push(value);
        } else {
            keys.push(TemplateKey { section: section.clone(), key: k.to_string(), value, commented });
        }
    }
    (keys, examples)
}

/// The keys documented in the "Keys" part of docs/configuration.md, as `section.key`: rows
/// `| \`key\` | ...` under a `### \`[section]\`` (or `### Top level`) heading.
fn documented_keys(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_keys = false;
    let mut section: Option<String> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            in_keys = h.trim() == "Keys";
            section = None;
            continue;
        }
        if !in_keys {
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            section = if h.trim() == "Top level" {
                Some(String::new())
            } else {
                h.split_once("`[").and_then(|(_, rest)| rest.split_once("]`")).map(|(name, _)| name.to_string())
            };
            continue;
        }
        let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else { continue };
        if let Some((key, _)) = row.split_once("` |") {
            if is_key(key) {
                out.insert(dotted(section, key));
            }
        }
    }
    out
}

fn load_snippet(text: &str) -> Result<Config, ConfigError> {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f.flush().expect("flush temp file");
    Config::load_layers(Some(f.path()), std::iter::empty::<(String, String)>())
}

fn snippet(section: &str, line: &str) -> String {
    if section.is_empty() {
        format!("{line}\n")
    } else {
        format!("[{section}]\n{line}\n")
    }
}

/// Values other than `value` of the same kind, derived from it (a flipped bool, another number,
/// a longer duration, another port, another word), then the template's examples for the key.
fn other_values(value: &str, examples: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        "true" => out.push("false".to_string()),
        "false" => out.push("true".to_string()),
        v if v.parse::<i64>().is_ok() => {
            let n = v.parse::<i64>().unwrap();
            out.push((n + 1).to_string());
            out.push((n + 2).to_string());
        }
        v if v.starts_with('"') && v.ends_with('"') && v.len() >= 2 => {
            let s = &v[1..v.len() - 1];
            if let Ok(d) = humantime::parse_duration(s) {
                let longer = d + std::time::Duration::from_millis(1);
                out.push(format!("\"{}\"", humantime::format_duration(longer)));
            }
            if let Ok(mut a) = s.parse::<SocketAddr>() {
                a.set_port(a.port().wrapping_add(1));
                out.push(format!("\"{a}\""));
            }
            out.push(format!("\"{s}-other\""));
            // Enumerations: any other value that the code accepts will do.
            for word in ["trace", "debug", "warn", "error", "interval", "always"] {
                out.push(format!("\"{word}\""));
            }
        }
        _ => {}
    }
    out.extend(examples.iter().cloned());
    out
}

#[test]
fn every_template_key_is_read_by_the_code() {
    let (keys, examples) = template_keys(&read("config/standalone.toml"));
    assert!(keys.len() >= 25, "parsed only {} keys from the template: {keys:?}", keys.len());
    assert!(keys.iter().any(|k| k.commented), "the template's commented-out keys were not found");
    let defaults = Config::default();
    for k in &keys {
        // The value the template shows loads (commented ones included).
        let shown = load_snippet(&snippet(&k.section, &format!("{} = {}", k.key, k.value)))
            .unwrap_or_else(|e| panic!("template value of `{}` does not load: {e}", k.dotted()));
        if !k.commented {
            assert_eq!(shown, defaults, "`{}`: the template shows a value other than the default", k.dotted());
        }
        // Some other value changes the loaded configuration: the key is read, not ignored.
        let candidates = other_values(&k.value, examples.get(&k.dotted()).map(Vec::as_slice).unwrap_or(&[]));
        let mut errors = Vec::new();
        let changed =
            candidates.iter().any(|v| match load_snippet(&snippet(&k.section, &format!("{} = {v}", k.key))) {
                Ok(c) => c != shown,
                Err(e) => {
                    errors.push(e.to_string());
                    false
                }
            });
        assert!(
            changed,
            "`{}` is not read by the code: none of {candidates:?} changed the config ({errors:?})",
            k.dotted()
        );
    }
}

#[test]
fn unknown_keys_are_rejected_in_every_template_section() {
    let (keys, _) = template_keys(&read("config/standalone.toml"));
    let sections: BTreeSet<&str> = keys.iter().map(|k| k.section.as_str()).collect();
    assert!(sections.len() >= 7, "{sections:?}");
    for section in sections {
        let err = load_snippet(&snippet(section, "no-such-key = 1"))
            .expect_err(&format!("an unknown key in [{section}] must be rejected"));
        let msg = err.to_string();
        assert!(msg.contains("no-such-key"), "[{section}]: {msg}");
    }
}

#[test]
fn template_and_docs_list_the_same_keys() {
    let (keys, _) = template_keys(&read("config/standalone.toml"));
    let in_template: BTreeSet<String> = keys.iter().map(TemplateKey::dotted).collect();
    let documented = documented_keys(&read("docs/configuration.md"));
    assert!(documented.len() >= 25, "parsed only {} documented keys: {documented:?}", documented.len());
    let undocumented: Vec<_> = in_template.difference(&documented).collect();
    assert!(undocumented.is_empty(), "template keys missing from docs/configuration.md: {undocumented:?}");
    let not_in_template: Vec<_> = documented.difference(&in_template).collect();
    assert!(not_in_template.is_empty(), "documented keys missing from config/standalone.toml: {not_in_template:?}");
}

#[test]
fn cluster_templates_use_only_template_keys() {
    let (keys, _) = template_keys(&read("config/standalone.toml"));
    let in_template: BTreeSet<String> = keys.iter().map(TemplateKey::dotted).collect();
    for n in 1..=3 {
        let rel = format!("config/cluster-3node/node{n}.toml");
        let (cluster_keys, _) = template_keys(&read(&rel));
        assert!(cluster_keys.len() >= 6, "{rel}: {cluster_keys:?}");
        for k in cluster_keys {
            assert!(in_template.contains(&k.dotted()), "{rel}: `{}` is not in config/standalone.toml", k.dotted());
        }
    }
}

#[test]
fn the_parsers_see_what_is_there() {
    // The helpers above on small inputs, so that a parsing slip cannot hide a missing key.
    let (keys, examples) = template_keys(
        "a = 1\n# b = \"x\"\n#   c = [1]\n# prose = without the spacing rule? no\n[s]\nd = [\n  1,\n]\n# Not a key.\n",
    );
    let got: Vec<(String, bool)> = keys.iter().map(|k| (k.dotted(), k.commented)).collect();
    assert_eq!(got, vec![("a".into(), false), ("b".into(), true), ("prose".into(), true), ("s.d".into(), false)]);
    assert_eq!(keys[3].value, "[1,]");
    assert_eq!(examples.get("c"), Some(&vec!["[1]".to_string()]));
    let doc = "## Keys\n### Top level\n| key |\n| `x` | 1 |\n### `[s]` — s\n| `y-z` | 2 |\n## Other\n| `w` | 3 |\n";
    assert_eq!(documented_keys(doc), BTreeSet::from(["x".to_string(), "s.y-z".to_string()]));
}
