//! Protected topics: DeleteTopics and DeleteRecords may not touch a topic matching a protected
//! pattern; a delete by topic id alone cannot be checked, so it is refused while any pattern is
//! configured.

use super::rules::Policies;

pub const RULE: &str = "deletes.protected_topics";

/// The protected pattern a topic matches, if any.
pub fn protected<'a>(p: &'a Policies, topic: &str) -> Option<&'a str> {
    p.deletes.protected_topics.iter().find(|g| g.matches(topic)).map(|g| g.as_str())
}

/// Why deleting this topic (by name, or by id when `name` is None) is refused, or None.
pub fn refusal(p: &Policies, name: Option<&str>, label: &str) -> Option<String> {
    match name {
        Some(n) => protected(p, n).map(|g| format!("durability proxy refused to delete topic '{n}': it matches protected pattern '{g}'")),
        // Without a name the proxy cannot tell whether the topic is protected: fail closed.
        None if !p.deletes.protected_topics.is_empty() => {
            Some(format!("durability proxy refused to delete {label}: name the topic, protected topics are configured"))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_names_and_nameless_deletes() {
        let cfg = |extra: &str| {
            crate::config::parse(&format!(
                "listen:\n  advertised_host: p\n  bootstrap_port: 1\n  broker_port_base: 100\nupstream:\n  bootstrap_servers: ['b:1']\n{extra}"
            ))
            .expect("config")
        };
        let guarded = cfg("policies:\n  deletes:\n    protected_topics: ['keep-*']\n");
        let open = cfg("");
        let cases: &[(&crate::config::Config, Option<&str>, bool)] = &[
            (&guarded, Some("keep-a"), true),
            (&guarded, Some("scratch"), false),
            (&guarded, None, true),
            (&open, None, false),
            (&open, Some("keep-a"), false),
        ];
        for (c, name, refused) in cases {
            assert_eq!(refusal(&c.policies, *name, "topic id x").is_some(), *refused, "{name:?}");
        }
        assert_eq!(protected(&guarded.policies, "keep-x"), Some("keep-*"));
    }
}
