//! Pod logs the test sets through the handle, served as `pods/<p>/log` with `container`,
//! `tailLines`, `sinceSeconds` and `previous` as the kubelet would filter them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// (namespace, pod, container, previous).
type LogKey = (String, String, String, bool);

/// Each container instance's lines with the time each was written.
#[derive(Default)]
pub struct Logs {
    lines: HashMap<LogKey, Vec<(SystemTime, String)>>,
}

/// What a log request asks for.
pub struct LogQuery {
    /// The container (required when the pod has several).
    pub container: Option<String>,
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Only lines written in the last N seconds.
    pub since_seconds: Option<u64>,
    /// The previous (terminated) instance's log.
    pub previous: bool,
}

impl Logs {
    /// Replaces a container's log with `text`, every line written `age` ago.
    pub fn set(
        &mut self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
        text: &str,
        age: Duration,
    ) {
        let at = SystemTime::now() - age;
        let lines = text.lines().map(|l| (at, l.to_string())).collect();
        self.lines
            .insert((ns.into(), pod.into(), container.into(), previous), lines);
    }

    /// Appends one line written `age` ago.
    pub fn push(&mut self, ns: &str, pod: &str, container: &str, line: &str, age: Duration) {
        self.lines
            .entry((ns.into(), pod.into(), container.into(), false))
            .or_default()
            .push((SystemTime::now() - age, line.to_string()));
    }

    /// The log text for `container`, or None when that instance has no log.
    pub fn read(&self, ns: &str, pod: &str, container: &str, q: &LogQuery) -> Option<String> {
        let lines = self
            .lines
            .get(&(ns.into(), pod.into(), container.into(), q.previous))?;
        let since = q
            .since_seconds
            .map(|s| SystemTime::now() - Duration::from_secs(s));
        let kept: Vec<&str> = lines
            .iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .map(|(_, l)| l.as_str())
            .collect();
        let start = q.tail_lines.map_or(0, |n| kept.len().saturating_sub(n));
        Some(kept[start..].iter().map(|l| format!("{l}\n")).collect())
    }

    /// True when the pod has a log for `container` (either instance).
    pub fn has_container(&self, ns: &str, pod: &str, container: &str) -> bool {
        self.lines
            .keys()
            .any(|k| k.0 == ns && k.1 == pod && k.2 == container)
    }
}
