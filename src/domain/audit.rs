//! Audit logs (spec sections 4 and 5): what the site log and the policy
//! log keep of each change.

/// One entry of an audit log about a subject `S`: a site's public id in
/// the site log, a policy id in the policy log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry<S> {
    /// What changed.
    pub subject: S,
    /// What happened, in words.
    pub description: String,
    /// The access key that made the change; none for operator tools.
    pub access_key: Option<String>,
    /// When, epoch ms.
    pub timestamp: i64,
}
