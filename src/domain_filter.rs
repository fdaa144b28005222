//! Which domains are collected: `domain_include` / `domain_exclude`, glob lists on the name.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// A bad pattern, and the list it is in.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(transparent)]
    Include(GlobError),
    #[error(transparent)]
    Exclude(GlobError),
}

#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    #[error("`{pattern}`: {source}")]
    Pattern {
        pattern: String,
        source: globset::Error,
    },
    #[error(transparent)]
    Set(globset::Error),
}

/// An empty include list takes every domain; exclude wins over include.
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl DomainFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, FilterError> {
        Ok(DomainFilter {
            include: set(include).map_err(FilterError::Include)?,
            exclude: set(exclude).map_err(FilterError::Exclude)?,
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

fn set(patterns: &[String]) -> Result<Option<GlobSet>, GlobError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // A name is not a path: `*` also matches `/`.
        let glob = Glob::new(pattern).map_err(|source| GlobError::Pattern {
            pattern: pattern.clone(),
            source,
        })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(GlobError::Set)
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
        assert!(matches!(error, FilterError::Exclude(_)), "{error:?}");
        assert!(error.to_string().contains("[unclosed"), "{error}");
    }
}
