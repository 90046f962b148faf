//! Who a client is, from its TLS certificate: Kafka's `ssl.principal.mapping.rules` applied to
//! the certificate subject (RFC 2253), giving `User:<name>` exactly as a broker would. Pure:
//! the certificate is read in `net::tls`, SASL principals come from `protocol::sasl`.

use std::sync::RwLock;

use regex::Regex;

/// Who is on the other end of one client connection: its certificate (when it presented one)
/// and the principal it authenticated as. A SASL principal, once the broker accepted it, wins
/// over the certificate's, as on a Kafka SASL_SSL listener.
#[derive(Debug, Default)]
pub struct Identity {
    /// Subject of the client certificate (RFC 2253).
    pub tls_subject: Option<String>,
    /// `User:<name>` from the certificate by the mapping rules.
    pub tls_principal: Option<String>,
    /// The SASL principal and whether the proxy could trust its name (false for OAUTHBEARER:
    /// the `sub` claim of a token whose signature only the broker checked).
    sasl_principal: RwLock<Option<(String, bool)>>,
}

impl Identity {
    pub fn from_tls(subject: Option<String>, principal: Option<String>) -> Identity {
        Identity { tls_subject: subject, tls_principal: principal, sasl_principal: RwLock::new(None) }
    }

    /// The principal policies and audit events use, if any.
    pub fn principal(&self) -> Option<String> {
        let sasl = self.sasl_principal.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(name, _)| name.clone());
        sasl.or_else(|| self.tls_principal.clone())
    }

    /// Whether the principal in force is a SASL name the proxy read but could not verify
    /// (OAUTHBEARER's `sub`): audit events then say `principal_unverified`.
    pub fn principal_unverified(&self) -> bool {
        self.sasl_principal.read().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|(_, verified)| !verified)
    }

    /// Records (or, with None, forgets) the SASL principal once the broker has ruled on it, and
    /// whether its name could be verified.
    pub fn set_sasl_principal(&self, p: Option<(String, bool)>) {
        *self.sasl_principal.write().unwrap_or_else(|e| e.into_inner()) = p;
    }
}

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Clone, Debug)]
enum Rule {
    /// `DEFAULT`: the subject unchanged.
    Default,
    /// `RULE:pattern/replacement/[LU]`: when the whole subject matches, the replacement with
    /// groups filled in, optionally lower- or upper-cased.
    Rewrite { whole: Regex, replacement: String, case: Case },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// Parsed mapping rules, tried in order; the first that matches names the principal.
#[derive(Clone, Debug)]
pub struct MappingRules(Vec<Rule>);

impl MappingRules {
    /// Parses rules as Kafka writes them; every bad rule is reported.
    pub fn parse(rules: &[String]) -> Result<MappingRules, Vec<String>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match parse_rule(r.trim()) {
                Ok(rule) => out.push(rule),
                Err(e) => errors.push(format!("principal_mapping_rules[{i}] `{r}`: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(MappingRules(out))
        } else {
            Err(errors)
        }
    }

    /// The principal for a certificate subject (`User:<name>`), or None when no rule matches
    /// (a broker refuses such a client; the proxy records it without a principal).
    pub fn principal(&self, subject: &str) -> Option<String> {
        self.0.iter().find_map(|r| apply(r, subject)).map(|name| format!("User:{name}"))
    }
}

fn parse_rule(r: &str) -> Result<Rule, String> {
    if r == "DEFAULT" {
        return Ok(Rule::Default);
    }
    let body = r.strip_prefix("RULE:").ok_or("a rule is DEFAULT or RULE:pattern/replacement/[LU]")?;
    let parts = split_unescaped(body);
    let [pattern, replacement, flags] = parts.as_slice() else {
        return Err("expected RULE:pattern/replacement/ with an optional L or U after the last slash".into());
    };
    let case = match flags.as_str() {
        "" => Case::Keep,
        "L" => Case::Lower,
        "U" => Case::Upper,
        f => return Err(format!("unknown flag `{f}` (L or U)")),
    };
    let whole = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad pattern: {e}"))?;
    Ok(Rule::Rewrite { whole, replacement: java_replacement(replacement), case })
}

/// Splits on `/` not preceded by a backslash; `\/` becomes `/`.
fn split_unescaped(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('/')) => {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push('/');
                }
            }
            ('/', _) => parts.push(String::new()),
            (c, _) => {
                if let Some(p) = parts.last_mut() {
                    p.push(c);
                }
            }
        }
    }
    parts
}

/// Java's `$1` group references as the regex crate writes them (`${1}`), so `$1x` stays group 1.
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 8);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('$', Some(d)) if d.is_ascii_digit() => {
                chars.next();
                out.push_str(&format!("${{{d}}}"));
            }
            ('$', _) => out.push_str("$$"),
            (c, _) => out.push(c),
        }
    }
    out
}

fn apply(rule: &Rule, subject: &str) -> Option<String> {
    match rule {
        Rule::Default => Some(subject.to_owned()),
        Rule::Rewrite { whole, replacement, case } => {
            let caps = whole.captures(subject)?;
            let mut name = String::new();
            caps.expand(replacement, &mut name);
            Some(match case {
                Case::Keep => name,
                Case::Lower => name.to_lowercase(),
                Case::Upper => name.to_uppercase(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sasl_principal_wins_over_the_certificate_and_says_whether_it_was_verified() {
        let id = Identity::from_tls(Some("CN=app".into()), Some("User:app".into()));
        assert_eq!((id.principal().as_deref(), id.principal_unverified()), (Some("User:app"), false));
        id.set_sasl_principal(Some(("User:alice".into(), false)));
        assert_eq!((id.principal().as_deref(), id.principal_unverified()), (Some("User:alice"), true), "OAUTHBEARER sub");
        id.set_sasl_principal(Some(("User:bob".into(), true)));
        assert_eq!((id.principal().as_deref(), id.principal_unverified()), (Some("User:bob"), false), "SCRAM");
        id.set_sasl_principal(None);
        assert_eq!((id.principal().as_deref(), id.principal_unverified()), (Some("User:app"), false));
    }

    fn rules(r: &[&str]) -> MappingRules {
        MappingRules::parse(&r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("rules")
    }

    #[test]
    fn kafka_rules_map_subjects_like_a_broker() {
        let r = rules(&[
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=.*$/$1@$2/L",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
            "DEFAULT",
        ]);
        let cases: &[(&str, Option<&str>)] = &[
            ("CN=kafka-app,OU=ServiceUsers,O=Example,C=US", Some("User:kafka-app")),
            ("CN=Duke,OU=JavaSoft,O=Sun,L=Cupertino,C=US", Some("User:duke@javasoft")),
            ("EMAILADDRESS=x@y,cn=ops.box,O=Example", Some("User:OPS.BOX")),
            ("O=NoCommonName", Some("User:O=NoCommonName")),
        ];
        for (subject, want) in cases {
            assert_eq!(r.principal(subject).as_deref(), *want, "{subject}");
        }
        assert_eq!(rules(&["DEFAULT"]).principal("CN=a,O=b").as_deref(), Some("User:CN=a,O=b"));
        assert_eq!(rules(&["RULE:^CN=(x)$/$1/"]).principal("CN=y"), None, "no rule matches: no principal");
        assert_eq!(rules(&[r"RULE:^CN=([^,]*)\/(.*)$/$1-$2/"]).principal("CN=a/b"), Some("User:a-b".into()), "escaped slash");
        assert_eq!(rules(&["RULE:^CN=(.*)$/$1x$/"]).principal("CN=a"), Some("User:ax$".into()), "$1 followed by text; a lone $");
    }

    #[test]
    fn bad_rules_are_each_reported() {
        let errs = MappingRules::parse(&["RULE:^(x/y/".into(), "RULE:a/b/Q".into(), "KERBEROS".into(), "DEFAULT".into()]).expect_err("bad");
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("principal_mapping_rules[0]") && errs[0].contains("bad pattern"), "{errs:?}");
        assert!(errs[1].contains("unknown flag `Q`"), "{errs:?}");
        assert!(errs[2].contains("a rule is DEFAULT or RULE:"), "{errs:?}");
    }
}
