//! What every scenario of a run shares: the settings, the secrets the targets are started
//! with, the tokens minted for them, where the logs go, the log ([`say!`]) and the
//! progress lines with the time left (`progress.rs`).

use crate::cli::Config;
use crate::fanout::StepConfig;
use crate::progress::Progress;
use crate::target::{Kind, Secrets};
use crate::token;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// A line on stderr, `[bench] ...`.
macro_rules! say {
    ($($t:tt)*) => { eprintln!("[bench] {}", format!($($t)*)) };
}
pub(crate) use say;

pub struct Ctx {
    /// The repository root.
    pub root: PathBuf,
    pub cfg: Config,
    pub secrets: Secrets,
    /// Valid tokens for users u0..u1023.
    pub tokens: Rc<Vec<String>>,
    /// Where each target's stderr goes (`<results>/logs`).
    pub logs: PathBuf,
    pub progress: Progress,
}

impl Ctx {
    /// The token for the i-th connection to `kind` (`None`: it checks no tokens); `bad`:
    /// the same token wrongly signed.
    pub fn token_fn(&self, kind: Kind, bad: bool) -> Rc<dyn Fn(u64) -> Option<String>> {
        let tokens = self.tokens.clone();
        let auth = kind.has_auth();
        Rc::new(move |i| {
            let t = &tokens[i as usize % tokens.len()];
            auth.then(|| {
                if bad {
                    token::with_bad_signature(t)
                } else {
                    t.clone()
                }
            })
        })
    }

    /// The warm-up, measured window and drain of a fan-out step, from the settings.
    pub fn step_config(&self) -> StepConfig {
        StepConfig {
            warmup: Duration::from_secs_f64(self.cfg.warmup_secs),
            measure: Duration::from_secs_f64(self.cfg.step_secs),
            drain: Duration::from_secs_f64(self.cfg.drain_secs),
        }
    }
}
