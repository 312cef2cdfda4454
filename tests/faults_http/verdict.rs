//! The verdict line each scenario ends with, printed to stdout and asserted:
//! `VERDICT scenario=NAME result=PASS|FAIL key=value ...`. The checks are collected
//! first, so a failing run still prints every figure before it fails.

use std::fmt::Display;

#[derive(Debug)]
pub(crate) struct Verdict {
    scenario: &'static str,
    keys: Vec<(&'static str, String)>,
    failures: Vec<String>,
    finished: bool,
}

impl Verdict {
    pub(crate) fn new(scenario: &'static str) -> Self {
        Self { scenario, keys: Vec::new(), failures: Vec::new(), finished: false }
    }

    /// A figure for the line.
    pub(crate) fn key(&mut self, name: &'static str, value: impl Display) {
        self.keys.push((name, value.to_string()));
    }

    /// An expectation: when `ok` is false, `what` is why the scenario fails.
    pub(crate) fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    fn line(&self) -> String {
        let result = if self.failures.is_empty() { "PASS" } else { "FAIL" };
        let mut line = format!("VERDICT scenario={} result={result}", self.scenario);
        for (name, value) in &self.keys {
            line.push_str(&format!(" {name}={value}"));
        }
        line
    }

    /// Prints the line, then fails with every unmet expectation.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        println!("{}", self.line());
        assert!(self.failures.is_empty(), "{} failed:\n- {}", self.scenario, self.failures.join("\n- "));
    }
}

impl Drop for Verdict {
    /// A scenario that panicked before its end still says so on its verdict line.
    fn drop(&mut self) {
        if !self.finished {
            self.failures.push("aborted".into());
            println!("{} aborted=true", self.line());
        }
    }
}
