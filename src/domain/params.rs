//! Query-string reading shared by every list endpoint: each known parameter
//! at most once, empty values treated as absent, and paging (spec section 1)
//! validated rather than clamped.

use std::borrow::Cow;
use std::fmt;

use super::history::MAX_EPOCH_MS;

/// A query parameter that is malformed, missing or out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter or body field at fault, as the client spells it.
    pub param: Cow<'static, str>,
    /// What is wrong, in words for the client.
    pub problem: String,
}

impl ParamError {
    /// An error naming `param`.
    pub fn new(param: &'static str, problem: impl Into<String>) -> Self {
        Self {
            param: Cow::Borrowed(param),
            problem: problem.into(),
        }
    }

    /// An error naming a body field by its path, e.g. `drmPolicyConfig.widevine.hdcp`.
    pub fn field(path: String, problem: impl Into<String>) -> Self {
        Self {
            param: Cow::Owned(path),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.param, self.problem)
    }
}

/// The decoded pairs of a query string.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Decodes a raw query string (without the `?`).
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Self(pairs)
    }

    /// Pairs given directly, as the command line builds them.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `name`; empty counts as absent, twice is an error.
    pub fn get(&self, name: &'static str) -> Result<Option<&str>, ParamError> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ParamError::new(name, "is given more than once"));
        }
        Ok(first.filter(|value| !value.is_empty()))
    }

    /// The value of a parameter that must be present.
    pub fn require(&self, name: &'static str) -> Result<&str, ParamError> {
        self.get(name)?
            .ok_or_else(|| ParamError::new(name, "is required"))
    }

    /// A non-negative integer parameter within `range`.
    pub fn integer(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ParamError> {
        let Some(text) = self.get(name)? else {
            return Ok(None);
        };
        let in_range = || {
            format!(
                "must be an integer from {} to {}",
                range.start(),
                range.end()
            )
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParamError::new(name, in_range()));
        }
        match text.parse::<i64>() {
            Ok(value) if range.contains(&value) => Ok(Some(value)),
            _ => Err(ParamError::new(name, in_range())),
        }
    }
}

/// `startTime` and `endTime`: epoch ms, both inclusive, both optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub start: Option<i64>,
    /// Inclusive upper bound.
    pub end: Option<i64>,
}

impl TimeRange {
    /// Reads both bounds; a start after the end is a fault of `endTime`.
    pub fn from_params(params: &QueryParams) -> Result<Self, ParamError> {
        let start = params.integer("startTime", 0..=MAX_EPOCH_MS)?;
        let end = params.integer("endTime", 0..=MAX_EPOCH_MS)?;
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(ParamError::new("endTime", "is before startTime"));
            }
        }
        Ok(Self { start, end })
    }
}

/// Largest page number accepted; far beyond any real walk, it keeps
/// offsets inside 64-bit arithmetic.
pub const MAX_PAGE_NO: i64 = 100_000_000;

/// One page of a list: 1-based number and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based page number.
    pub number: i64,
    /// Items per page, 1..=100.
    pub size: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            number: 1,
            size: 20,
        }
    }
}

impl Page {
    /// Reads `pageNo` and `pageSize` (or its older name `pageSizeNo`).
    pub fn from_params(params: &QueryParams) -> Result<Self, ParamError> {
        let number = params.integer("pageNo", 1..=MAX_PAGE_NO)?.unwrap_or(1);
        let size = params.integer("pageSize", 1..=100)?;
        let legacy = params.integer("pageSizeNo", 1..=100)?;
        let size = match (size, legacy) {
            (Some(size), Some(legacy)) if size != legacy => {
                return Err(ParamError::new(
                    "pageSizeNo",
                    "differs from pageSize; send one of them",
                ))
            }
            (size, legacy) => size.or(legacy).unwrap_or(20),
        };
        Ok(Self { number, size })
    }

    /// Rows to skip before this page.
    pub fn offset(&self) -> i64 {
        (self.number - 1) * self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Result<Page, ParamError> {
        Page::from_params(&QueryParams::parse(Some(query)))
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            page(""),
            Ok(Page {
                number: 1,
                size: 20
            })
        );
        assert_eq!(page("pageNo=3&pageSize=10").map(|p| p.offset()), Ok(20));
        assert_eq!(
            page("pageSizeNo=30"),
            Ok(Page {
                number: 1,
                size: 30
            })
        );
        assert_eq!(
            page("pageSize=30&pageSizeNo=30"),
            Ok(Page {
                number: 1,
                size: 30
            })
        );
        assert_eq!(page("pageNo=0").unwrap_err().param, "pageNo");
        assert_eq!(page("pageNo=abc").unwrap_err().param, "pageNo");
        assert_eq!(page("pageSize=101").unwrap_err().param, "pageSize");
        assert_eq!(page("pageSize=0").unwrap_err().param, "pageSize");
        assert_eq!(page("pageSize=-5").unwrap_err().param, "pageSize");
        assert_eq!(
            page("pageSize=10&pageSizeNo=30").unwrap_err().param,
            "pageSizeNo"
        );
        assert_eq!(
            page("pageNo=1&pageNo=2").unwrap_err().problem,
            "is given more than once"
        );
    }
}
