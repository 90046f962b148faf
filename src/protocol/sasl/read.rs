//! Reading a user name out of one client SASL token (SCRAM client-first, PLAIN, OAUTHBEARER
//! initial response) without copying anything secret; a failure names what was wrong, never the
//! bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT;
use base64::Engine;

/// Why a token yields no principal: a fixed sentence, safe to log (it never quotes the token).
pub type Unreadable = &'static str;

/// The user of a SCRAM client-first message `gs2-header [m=..,] n=USER,r=NONCE[,ext...]`.
pub fn scram_user(token: &[u8]) -> Result<String, Unreadable> {
    let text = std::str::from_utf8(token).map_err(|_| "SCRAM client-first message is not UTF-8")?;
    let (authzid, bare) = gs2_header(text, true)?;
    let mut fields = bare.split(',');
    let first = fields.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err("SCRAM client-first message demands an extension (m=) no broker supports");
    }
    let user = first.strip_prefix("n=").ok_or("SCRAM client-first message has no n= username")?;
    let user = saslname(user)?;
    let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or("SCRAM client-first message has no r= nonce")?;
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("SCRAM client-first message has an empty or unprintable nonce");
    }
    for extension in fields {
        if extension.split_once('=').is_some_and(|(k, v)| k == "tokenauth" && v.eq_ignore_ascii_case("true")) {
            return Err("SCRAM with a delegation token: the principal is the token's owner, which the token id does not name");
        }
    }
    same_as_authzid(authzid, user)
}

/// The user of a PLAIN token `authzid NUL user NUL password`. The password is never copied:
/// it is only checked for presence, in the caller's buffer.
pub fn plain_user(token: &[u8]) -> Result<String, Unreadable> {
    let mut parts = token.split(|b| *b == 0);
    let (authzid, user) = match (parts.next(), parts.next()) {
        (Some(a), Some(u)) => (a, u),
        _ => return Err("PLAIN token has no NUL-separated user"),
    };
    let password_present = parts.next().is_some_and(|p| !p.is_empty());
    if !password_present {
        return Err("PLAIN token has no password (the broker refuses it)");
    }
    if parts.next().is_some() {
        return Err("PLAIN token has more than three NUL-separated fields");
    }
    let user = std::str::from_utf8(user).map_err(|_| "PLAIN user name is not UTF-8")?;
    if user.is_empty() {
        return Err("PLAIN token has an empty user name");
    }
    let authzid = std::str::from_utf8(authzid).map_err(|_| "PLAIN authorization id is not UTF-8")?;
    same_as_authzid((!authzid.is_empty()).then(|| authzid.to_owned()), user.to_owned())
}

/// The `sub` claim of the bearer token in an OAUTHBEARER initial response (RFC 7628):
/// `gs2-header \x01 *(key=value \x01) \x01`, one pair being `auth=Bearer <JWT>`. Unverified.
pub fn oauth_subject(token: &[u8]) -> Result<String, Unreadable> {
    let text = std::str::from_utf8(token).map_err(|_| "OAUTHBEARER message is not UTF-8")?;
    let (gs2, pairs) = text.split_once('\x01').ok_or("OAUTHBEARER message has no \\x01 separator")?;
    let (authzid, rest) = gs2_header(gs2, false)?;
    if !rest.is_empty() {
        return Err("OAUTHBEARER message has a malformed gs2 header");
    }
    let pairs = pairs.strip_suffix('\x01').filter(|p| p.is_empty() || p.ends_with('\x01'));
    let pairs = pairs.ok_or("OAUTHBEARER message does not end with \\x01\\x01")?;
    let mut auth = None;
    for pair in pairs.split_terminator('\x01') {
        let (key, value) = pair.split_once('=').ok_or("OAUTHBEARER key-value pair has no '='")?;
        if key == "auth" {
            auth = Some(value);
        }
    }
    let auth = auth.ok_or("OAUTHBEARER message has no auth= pair")?;
    let (scheme, jwt) = auth.split_once(' ').ok_or("OAUTHBEARER auth value has no scheme")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("OAUTHBEARER auth scheme is not Bearer");
    }
    let sub = jwt_subject(jwt.trim_start_matches(' '))?;
    same_as_authzid(authzid, sub)
}

/// The `sub` claim of a compact JWS `header.payload.signature`, read without verifying anything.
fn jwt_subject(jwt: &str) -> Result<String, Unreadable> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("bearer token is not a three-part JWT");
    };
    let json = URL_SAFE_NO_PAD_INDIFFERENT.decode(payload).map_err(|_| "JWT payload is not base64url")?;
    let claims: serde_json::Value = serde_json::from_slice(&json).map_err(|_| "JWT payload is not JSON")?;
    match claims.get("sub").and_then(|s| s.as_str()) {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err("JWT has no sub claim"),
    }
}

/// Splits a gs2 header `flag,[a=authzid],` off `text`; returns the decoded authzid and the rest.
/// Channel binding `p=...` is only legal for SCRAM.
fn gs2_header(text: &str, channel_binding: bool) -> Result<(Option<String>, &str), Unreadable> {
    let (flag, rest) = text.split_once(',').ok_or("SASL message has no gs2 header")?;
    let flag_ok = match flag {
        "n" | "y" => true,
        f => channel_binding && f.strip_prefix("p=").is_some_and(|name| !name.is_empty()),
    };
    if !flag_ok {
        return Err("SASL gs2 header has an unknown channel-binding flag");
    }
    let (authzid, rest) = rest.split_once(',').ok_or("SASL gs2 header is not closed by ','")?;
    let authzid = match authzid {
        "" => None,
        a => Some(saslname(a.strip_prefix("a=").ok_or("SASL gs2 header has something other than a= before the second ','")?)?),
    };
    Ok((authzid, rest))
}

/// Kafka refuses an authorization id other than the authenticated name; so does the proxy.
fn same_as_authzid(authzid: Option<String>, user: String) -> Result<String, Unreadable> {
    match authzid {
        Some(a) if a != user => Err("authorization id differs from the user name (the broker refuses it)"),
        _ => Ok(user),
    }
}

/// Decodes a SCRAM `saslname`: `=2C` is ',' and `=3D` is '='; any other '=' (and NUL) is malformed.
pub fn saslname(raw: &str) -> Result<String, Unreadable> {
    if raw.is_empty() {
        return Err("SASL name is empty");
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find(['=', '\0']) {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = after;
        } else {
            return Err("SASL name has a '=' that is not =2C or =3D, or a NUL");
        }
    }
    out.push_str(rest);
    Ok(out)
}
