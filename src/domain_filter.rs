//! Which domains are collected: `domain_include` / `domain_exclude`, glob lists on the name.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// An empty include list takes every domain; exclude wins over include.
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl DomainFilter {
    /// `Err((which, message))` names the list (`"include"` or `"exclude"`) and the bad pattern.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, (&'static str, String)> {
        Ok(DomainFilter {
            include: set(include).map_err(|e| ("include", e))?,
            exclude: set(exclude).map_err(|e| ("exclude", e))?,
        })
    }

    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(name))
            && !self.exclude.as_ref().is_some_and(|s| s.is_match(name))
    }

    /// True when every domain is taken.
    pub fn is_open(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }
}

fn set(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // A name is not a path: `*` also matches `/`.
        let glob = Glob::new(pattern).map_err(|e| format!("`{pattern}`: {e}"))?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn empty_lists_take_everything() {
        let filter = DomainFilter::new(&[], &[]).unwrap();
        assert!(filter.is_open());
        assert!(filter.allows("anything at all"));
    }

    #[test]
    fn include_narrows_and_exclude_wins() {
        let filter = DomainFilter::new(&list(&["web-*", "db?"]), &list(&["web-test*"])).unwrap();
        assert!(filter.allows("web-1"));
        assert!(filter.allows("db1"));
        assert!(!filter.allows("db12"));
        assert!(!filter.allows("web-test-3"));
        assert!(!filter.allows("mail"));
        let exclude_only = DomainFilter::new(&[], &list(&["*tmp*"])).unwrap();
        assert!(exclude_only.allows("prod"));
        assert!(!exclude_only.allows("a/tmp/b"));
    }

    #[test]
    fn a_bad_pattern_names_its_list() {
        let error = DomainFilter::new(&[], &list(&["[unclosed"])).unwrap_err();
        assert_eq!(error.0, "exclude");
        assert!(error.1.contains("[unclosed"), "{}", error.1);
    }
}
