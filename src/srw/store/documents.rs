//! The manifest and profile documents of an app, read from their JSON: what the node uses
//! of each, with Cocaine's defaults and the bounds it checks.

use super::super::SrwError;
use std::time::Duration;

/// What the node uses from a manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Executable, relative to the app's spool directory or absolute.
    pub slave: String,
    /// Appended to the inherited environment.
    pub environment: Vec<(String, String)>,
}

impl Manifest {
    /// `slave` is required; `environment` must map strings to strings; other keys are
    /// ignored, as Cocaine did.
    pub fn from_json(doc: &serde_json::Value) -> Result<Manifest, SrwError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| SrwError::Manifest("not a JSON object".into()))?;
        let slave = match obj.get("slave") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(SrwError::Manifest(
                    "app runnable object has not been specified (\"slave\" is required)".into(),
                ))
            }
        };
        let mut environment = Vec::new();
        if let Some(env) = obj.get("environment") {
            let env = env
                .as_object()
                .ok_or_else(|| SrwError::Manifest("\"environment\" must be an object".into()))?;
            for (k, v) in env {
                let v = v.as_str().ok_or_else(|| {
                    SrwError::Manifest(format!("\"environment.{k}\" must be a string"))
                })?;
                environment.push((k.clone(), v.to_string()));
            }
        }
        Ok(Manifest { slave, environment })
    }
}

/// Most output lines kept per worker for the failure log, whatever `crashlog-limit` says.
pub const CRASHLOG_LINES_MAX: usize = 1000;

/// Pool and timer settings of a profile, with the Cocaine 0.11 defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub pool_limit: usize,
    /// 0 = unbounded.
    pub queue_limit: usize,
    pub concurrency: usize,
    pub startup_timeout: Duration,
    pub heartbeat_timeout: Duration,
    /// Zero disables idle termination.
    pub idle_timeout: Duration,
    pub termination_timeout: Duration,
    /// `timeout`: how long a request may wait for its answer, queued and at its worker;
    /// zero (the default, as in 0.11) means no limit.
    pub request_timeout: Duration,
    /// `crashlog-limit`: lines of a worker's output kept for the log when it fails.
    pub crashlog_limit: usize,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            pool_limit: 10,
            queue_limit: 100,
            concurrency: 10,
            startup_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            termination_timeout: Duration::from_secs(5),
            request_timeout: Duration::ZERO,
            crashlog_limit: 50,
        }
    }
}

impl Profile {
    /// Read the top-level keys (0.11 names; the 0.12 `terminate-timeout`,
    /// `handshake-timeout` and `request-timeout` are accepted as aliases). Unknown keys are
    /// ignored.
    pub fn from_json(doc: &serde_json::Value) -> Result<Profile, SrwError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| SrwError::Profile("not a JSON object".into()))?;
        let mut p = Profile::default();
        let count = |key: &str, min: u64| -> Result<Option<usize>, SrwError> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if n >= min => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
                    _ => Err(SrwError::Profile(format!(
                        "\"{key}\" must be an integer >= {min}"
                    ))),
                },
            }
        };
        let secs = |keys: &[&str], allow_zero: bool| -> Result<Option<Duration>, SrwError> {
            for key in keys {
                if let Some(v) = obj.get(*key) {
                    let s = v.as_f64().filter(|s| {
                        s.is_finite() && *s <= 1e9 && (*s > 0.0 || (allow_zero && *s == 0.0))
                    });
                    return match s {
                        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
                        None => Err(SrwError::Profile(format!(
                            "\"{key}\" must be a number of seconds {}",
                            if allow_zero { ">= 0" } else { "> 0" }
                        ))),
                    };
                }
            }
            Ok(None)
        };
        if let Some(n) = count("pool-limit", 1)? {
            p.pool_limit = n;
        }
        if let Some(n) = count("queue-limit", 0)? {
            p.queue_limit = n;
        }
        if let Some(n) = count("concurrency", 1)? {
            p.concurrency = n;
        }
        if let Some(d) = secs(&["startup-timeout", "handshake-timeout"], false)? {
            p.startup_timeout = d;
        }
        if let Some(d) = secs(&["heartbeat-timeout"], false)? {
            p.heartbeat_timeout = d;
        }
        if let Some(d) = secs(&["idle-timeout"], true)? {
            p.idle_timeout = d;
        }
        if let Some(d) = secs(&["termination-timeout", "terminate-timeout"], false)? {
            p.termination_timeout = d;
        }
        if let Some(d) = secs(&["timeout", "request-timeout"], true)? {
            p.request_timeout = d;
        }
        if let Some(n) = count("crashlog-limit", 0)? {
            p.crashlog_limit = n.min(CRASHLOG_LINES_MAX);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn manifest_without_slave_is_refused() {
        let doc = serde_json::json!({"type": "python"});
        assert!(matches!(
            Manifest::from_json(&doc),
            Err(SrwError::Manifest(_))
        ));
    }

    #[test]
    fn profile_defaults_and_overrides() {
        let p = Profile::from_json(&serde_json::json!({"isolate": {}})).unwrap();
        assert_eq!(p, Profile::default());
        let p = Profile::from_json(&serde_json::json!({
            "pool-limit": 2, "queue-limit": 0, "heartbeat-timeout": 1.5, "idle-timeout": 0
        }))
        .unwrap();
        assert_eq!((p.pool_limit, p.queue_limit), (2, 0));
        assert_eq!(p.heartbeat_timeout, Duration::from_millis(1500));
        assert_eq!(p.idle_timeout, Duration::ZERO);
        assert!(Profile::from_json(&serde_json::json!({"pool-limit": 0})).is_err());
    }
}
