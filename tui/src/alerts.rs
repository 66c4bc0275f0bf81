//! The alerts view's state: the selected alert and the last word on a silence made here. The
//! alerts themselves are the shared [`crate::app::Snapshot`]'s, as the overview shows them.

use crate::app::{Cmd, Key};
use skein_model::alert_api::AlertInfo;

/// What the alerts view shows and how.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    /// Selected row.
    pub selected: usize,
    /// The last word from a silence made here.
    pub note: Option<String>,
}

impl Alerts {
    /// Takes the answer to a silence: its ID, or why it was refused.
    pub fn silenced(&mut self, r: Result<String, String>) {
        self.note = Some(match r {
            Ok(id) => format!("silenced for 1h: {id}"),
            Err(e) => format!("silence refused: {e}"),
        });
    }

    /// The view's keys over the alerts shown; None when the key is not one of them.
    pub fn key(&mut self, shown: &[AlertInfo], k: Key) -> Option<Option<Cmd>> {
        match k {
            Key::Down | Key::Char('j') => {
                self.selected = (self.selected + 1).min(shown.len().saturating_sub(1));
            }
            Key::Up | Key::Char('k') => self.selected = self.selected.saturating_sub(1),
            Key::Char('S') => {
                return Some(
                    shown
                        .get(self.selected)
                        .map(|a| Cmd::Silence(a.labels.clone())),
                );
            }
            _ => return None,
        }
        Some(None)
    }
}
