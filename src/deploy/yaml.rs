//! A small YAML writer for Kubernetes manifests: block mappings and sequences, strings quoted
//! unless plainly safe, multi-line strings (scripts) as literal blocks. Input is any
//! `Serialize` value (the typed manifests in [`super::kube`]); output is YAML 1.2 that kubectl,
//! kustomize and kubernetes-validate read.

use serde::Serialize;
use serde_json::Value;

/// Renders `value` (a mapping at the top) as a YAML document.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    let mut out = String::new();
    write_value(&mut out, &v, 0, Context::Top);
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Top,
    /// After `key:` (a nested block goes on the next lines, a scalar on this one).
    MapValue,
    /// After `- ` (a mapping's first key goes on this line).
    SeqItem,
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_value(out: &mut String, v: &Value, level: usize, ctx: Context) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            if ctx == Context::MapValue {
                out.push('\n');
            }
            for (i, (k, val)) in map.iter().enumerate() {
                if !(ctx == Context::SeqItem && i == 0) {
                    indent(out, level);
                }
                out.push_str(&scalar_string(k));
                out.push(':');
                write_value(out, val, level + 2, Context::MapValue);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if ctx == Context::MapValue {
                out.push('\n');
            }
            for (i, item) in items.iter().enumerate() {
                if !(ctx == Context::SeqItem && i == 0) {
                    indent(out, level);
                }
                out.push_str("- ");
                write_value(out, item, level + 2, Context::SeqItem);
            }
        }
        Value::String(s) if s.contains('\n') => {
            if ctx != Context::SeqItem {
                out.push(' ');
            }
            out.push_str(if s.ends_with('\n') { "|\n" } else { "|-\n" });
            for line in s.lines() {
                if !line.is_empty() {
                    indent(out, level);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        scalar => {
            if ctx == Context::MapValue {
                out.push(' ');
            }
            out.push_str(&match scalar {
                Value::Object(_) => "{}".to_string(),
                Value::Array(_) => "[]".to_string(),
                Value::String(s) => scalar_string(s),
                other => other.to_string(),
            });
            out.push('\n');
        }
    }
}

/// A string as a plain scalar when nothing in YAML could read it as something else; otherwise
/// double-quoted (JSON's escapes are a subset of YAML's).
fn scalar_string(s: &str) -> String {
    const RESERVED: [&str; 12] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "nan", "inf",
    ];
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_with_quoting_where_needed() {
        let doc = json!({
            "apiVersion": "batch/v1",
            "metadata": {"name": "nslat-a-b", "labels": {"app.kubernetes.io/name": "nslat"}},
            "spec": {
                "backoffLimit": 0,
                "hostNetwork": true,
                "containers": [{"name": "c", "args": ["--remote", "10.0.0.2:12866", "yes", ""]}],
                "empty": {},
                "none": [],
                "script": "set -eu\n  echo \"hi\"\n"
            }
        });
        let y = to_yaml(&doc).unwrap();
        // serde_json's maps keep keys sorted (as `kubectl get -o yaml` prints them).
        let want = "\
apiVersion: batch/v1
metadata:
  labels:
    app.kubernetes.io/name: nslat
  name: nslat-a-b
spec:
  backoffLimit: 0
  containers:
    - args:
        - \"--remote\"
        - \"10.0.0.2:12866\"
        - \"yes\"
        - \"\"
      name: c
  empty: {}
  hostNetwork: true
  none: []
  script: |
    set -eu
      echo \"hi\"
";
        assert_eq!(y, want);
    }

    #[test]
    fn scalars_that_yaml_would_misread_are_quoted() {
        for s in [
            "true", "No", "12866", "1.5", "a: b", "#x", "-x", "", "x y", "*a",
        ] {
            assert!(scalar_string(s).starts_with('"'), "{s}");
        }
        for s in ["nslat", "batch/v1", "/results", "node-a", "nslat.dev/from"] {
            assert_eq!(scalar_string(s), s);
        }
    }
}
