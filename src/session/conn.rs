//! What the response side needs to know about the client of a connection when a detector fires:
//! its client id and consumer group, kept up to date by the request side (which compares without
//! allocating and writes only when they change).

use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct ConnInfo {
    client_id: Mutex<Option<String>>,
    group: Mutex<Option<String>>,
}

/// The request side's copy, so that an unchanged value costs a comparison, not a lock.
#[derive(Debug, Default)]
pub struct Seen {
    client_id: Option<String>,
    group: Option<String>,
}

fn note(seen: &mut Option<String>, shared: &Mutex<Option<String>>, now: Option<&str>) {
    if seen.as_deref() == now {
        return;
    }
    *seen = now.map(str::to_owned);
    *shared.lock().unwrap_or_else(|p| p.into_inner()) = seen.clone();
}

impl ConnInfo {
    pub fn note_client_id(&self, seen: &mut Seen, now: Option<&str>) {
        note(&mut seen.client_id, &self.client_id, now);
    }

    pub fn note_group(&self, seen: &mut Seen, now: Option<&str>) {
        if now.is_some() {
            note(&mut seen.group, &self.group, now);
        }
    }

    pub fn client_id(&self) -> Option<String> {
        self.client_id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn group(&self) -> Option<String> {
        self.group.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
