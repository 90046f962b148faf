//! The rule types every policy reads, as an operator writes them (serde) and once validated:
//! actions with their order, floors and checks, topic rules, exemptions, scopes, and the bundle
//! of all of them that a reload swaps atomically.

use ipnet::IpNet;
use serde::Deserialize;

use super::scope::Subject;
use crate::pattern::Glob;

/// What a rule does with a request that breaks it. Ordered from least to most strict, so "the
/// stricter of two" is `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward unchanged; only record it.
    Audit,
    /// Rewrite the request so it is durable, then forward it.
    Upgrade,
    /// Refuse it with the error the client's protocol version understands.
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Upgrade => "upgrade",
            Action::Reject => "reject",
            Action::Audit => "audit",
        }
    }

    /// The action where no safe rewrite exists (explicit replica assignments, config changes,
    /// acks=0 that cannot be answered): an upgrade becomes a refusal, the rest stand.
    pub fn without_rewrite(self) -> Action {
        match self {
            Action::Upgrade => Action::Reject,
            a => a,
        }
    }
}

/// A floor or ceiling rule with its action. `value: None` turns an optional rule off.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Bound<T> {
    pub value: Option<T>,
    #[serde(default = "default_reject")]
    pub action: Action,
}

/// A yes/no rule with its action.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Check {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_reject")]
    pub action: Action,
}

fn default_reject() -> Action {
    Action::Reject
}

pub(crate) fn default_true() -> bool {
    true
}

/// Topic shape rules for CreateTopics. Values a request leaves unset are judged at the broker's
/// default (read from the cluster, else Kafka's shipped default).
#[derive(Clone, Debug, Deserialize)]
pub struct CreateTopics {
    #[serde(default = "default_min_rf")]
    pub replication_factor: Bound<i16>,
    #[serde(default = "default_min_isr")]
    pub min_insync_replicas: Bound<i32>,
    /// RF must exceed min.insync.replicas, or one broker down stops every write.
    #[serde(default = "default_check")]
    pub rf_above_min_isr: Check,
    /// unclean.leader.election.enable must not be true.
    #[serde(default = "default_check")]
    pub no_unclean_leader_election: Check,
    #[serde(default = "default_off")]
    pub min_retention_ms: Bound<i64>,
    #[serde(default = "default_off")]
    pub min_retention_bytes: Bound<i64>,
    #[serde(default = "default_off")]
    pub max_message_bytes: Bound<i64>,
    #[serde(default)]
    pub exempt: RawExemptions,
}

fn default_min_rf() -> Bound<i16> {
    Bound { value: Some(3), action: Action::Reject }
}

fn default_min_isr() -> Bound<i32> {
    Bound { value: Some(2), action: Action::Reject }
}

fn default_check() -> Check {
    Check { enabled: true, action: Action::Reject }
}

fn default_off<T>() -> Bound<T> {
    Bound { value: None, action: Action::Reject }
}

impl Default for CreateTopics {
    fn default() -> Self {
        Self {
            replication_factor: default_min_rf(),
            min_insync_replicas: default_min_isr(),
            rf_above_min_isr: default_check(),
            no_unclean_leader_election: default_check(),
            min_retention_ms: default_off(),
            min_retention_bytes: default_off(),
            max_message_bytes: default_off(),
            exempt: RawExemptions::default(),
        }
    }
}

/// Topic rules a scope changes; the fields it leaves out keep the base rules' values.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CreateTopicsPatch {
    pub replication_factor: Option<Bound<i16>>,
    pub min_insync_replicas: Option<Bound<i32>>,
    pub rf_above_min_isr: Option<Check>,
    pub no_unclean_leader_election: Option<Check>,
    pub min_retention_ms: Option<Bound<i64>>,
    pub min_retention_bytes: Option<Bound<i64>>,
    pub max_message_bytes: Option<Bound<i64>>,
}

impl CreateTopicsPatch {
    pub fn apply(&self, base: &CreateTopics) -> CreateTopics {
        let mut r = base.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { r.$f = v; } )* };
        }
        take!(
            replication_factor,
            min_insync_replicas,
            rf_above_min_isr,
            no_unclean_leader_election,
            min_retention_ms,
            min_retention_bytes,
            max_message_bytes
        );
        r
    }
}

/// Exemptions as written: patterns, and source ranges still as text.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawExemptions {
    #[serde(default)]
    pub client_ids: Vec<Glob>,
    /// Authenticated principals (`User:alice`), patterns like client ids.
    #[serde(default)]
    pub principals: Vec<Glob>,
    #[serde(default)]
    pub source_cidrs: Vec<String>,
    #[serde(default)]
    pub topics: Vec<Glob>,
}

/// Exemptions with source ranges parsed.
#[derive(Clone, Debug, Default)]
pub struct Exemptions {
    pub client_ids: Vec<Glob>,
    pub principals: Vec<Glob>,
    pub source_cidrs: Vec<IpNet>,
    pub topics: Vec<Glob>,
}

impl Exemptions {
    /// Whether the client (by id, principal or source address) is exempt, whatever the topic.
    pub fn client_exempt(&self, s: &Subject<'_>) -> bool {
        let any = |globs: &[Glob], text: Option<&str>| text.is_some_and(|t| globs.iter().any(|g| g.matches(t)));
        any(&self.client_ids, s.client_id) || any(&self.principals, s.principal) || self.source_cidrs.iter().any(|n| n.contains(&s.peer))
    }

    pub fn topic_exempt(&self, topic: &str) -> bool {
        self.topics.iter().any(|g| g.matches(topic))
    }
}

/// A validated scope, its rule sets already merged with the base rules.
#[derive(Clone, Debug)]
pub struct Scope {
    pub name: String,
    pub topics: Vec<Glob>,
    pub client_ids: Vec<Glob>,
    pub principals: Vec<Glob>,
    pub source_cidrs: Vec<IpNet>,
    pub produce_acks: Option<Action>,
    pub idempotence: Option<Action>,
    pub create_topics: Option<CreateTopics>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MetadataPolicy {
    /// Clear allow_auto_topic_creation in Metadata requests: auto-created topics get broker
    /// defaults, bypassing every create_topics rule.
    #[serde(default = "default_true")]
    pub block_auto_topic_creation: bool,
}

impl Default for MetadataPolicy {
    fn default() -> Self {
        Self { block_auto_topic_creation: true }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Deletes {
    /// Topics that cannot be deleted (DeleteTopics) or truncated (DeleteRecords). Every delete of
    /// any topic is audited either way.
    #[serde(default)]
    pub protected_topics: Vec<Glob>,
}

#[derive(Clone, Debug)]
pub struct CreateTopicsRule {
    pub rules: CreateTopics,
    pub exempt: Exemptions,
}

#[derive(Clone, Debug)]
pub struct ProduceAcksRule {
    pub action: Action,
    pub exempt: Exemptions,
    /// Hold upgraded acks=0 requests and re-send them until acknowledged (see `delivery`).
    pub redeliver: bool,
    pub delivery_timeout_ms: u64,
}

/// Producers must be idempotent (a producer id in every batch), or a retry may write a batch
/// twice. `reject` answers POLICY_VIOLATION; `upgrade` does not exist for this rule.
#[derive(Clone, Debug)]
pub struct IdempotenceRule {
    pub action: Action,
    pub exempt: Exemptions,
}

/// What the detectors watch (they see, count and audit; they change nothing).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Detectors {
    /// Partition errors in Produce responses, which many applications never read.
    #[serde(default = "default_true")]
    pub produce_errors: bool,
    /// Fetches answered OFFSET_OUT_OF_RANGE below the log start: records deleted unread.
    #[serde(default = "default_true")]
    pub consumer_skips: bool,
    /// An event per committed offset (group, member, topic, partition, offset).
    #[serde(default)]
    pub offset_commits: bool,
}

impl Default for Detectors {
    fn default() -> Self {
        Self { produce_errors: true, consumer_skips: true, offset_commits: false }
    }
}

/// Every rule, validated: what a policy reload replaces in one step.
#[derive(Clone, Debug)]
pub struct Policies {
    pub produce_acks: ProduceAcksRule,
    pub idempotence: IdempotenceRule,
    pub create_topics: CreateTopicsRule,
    pub metadata: MetadataPolicy,
    pub deletes: Deletes,
    pub scopes: Vec<Scope>,
    pub detectors: Detectors,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_order_by_strictness() {
        assert_eq!(Action::Audit.max(Action::Upgrade), Action::Upgrade);
        assert_eq!(Action::Reject.max(Action::Upgrade), Action::Reject);
        let table = [(Action::Upgrade, Action::Reject), (Action::Reject, Action::Reject), (Action::Audit, Action::Audit)];
        for (a, want) in table {
            assert_eq!(a.without_rewrite(), want, "{a:?}");
        }
    }
}
