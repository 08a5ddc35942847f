//! The send-rate sweep: start low, double while sustainable, then bisect between the last
//! good and the first bad rate a fixed number of times. Its best rate is then confirmed:
//! it stands only if most repetitions at it are sustainable again; otherwise a lower
//! rate is tried ([`step_down`]), so the figure reported is one the target sustains, not
//! one it passed once.

/// How many times a best rate that does not confirm is lowered before giving up (the
/// figure is then reported as unconfirmed).
pub const MAX_STEP_DOWNS: u32 = 3;

/// Whether `sustainable` of `of` repetitions confirm a rate: more than half of them.
pub fn confirmed(sustainable: usize, of: usize) -> bool {
    of > 0 && sustainable * 2 > of
}

/// The next rate to confirm after `rate` did not: four fifths of it (`None` below 1/s).
pub fn step_down(rate: u64) -> Option<u64> {
    let lower = rate * 4 / 5;
    (lower >= 1 && lower < rate).then_some(lower)
}

/// Where the sweep stands. Feed each step's verdict to [`Sweep::next`].
#[derive(Debug, Clone)]
pub struct Sweep {
    current: u64,
    good: Option<u64>,
    bad: Option<u64>,
    bisections_left: u32,
    max_rate: u64,
}

impl Sweep {
    pub fn new(start: u64, bisections: u32, max_rate: u64) -> Sweep {
        Sweep {
            current: start.max(1),
            good: None,
            bad: None,
            bisections_left: bisections,
            max_rate,
        }
    }

    /// The rate to run now.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// Is it still doubling (no rate has failed yet)?
    pub fn doubling(&self) -> bool {
        self.bad.is_none()
    }

    /// Bisections still to run once a rate has failed.
    pub fn bisections_left(&self) -> u32 {
        self.bisections_left
    }

    /// The highest rate found sustainable so far.
    pub fn best(&self) -> Option<u64> {
        self.good
    }

    /// Records whether the current rate was sustainable; the next rate to try, or `None`
    /// when the sweep is over.
    pub fn next(&mut self, sustainable: bool) -> Option<u64> {
        if sustainable {
            self.good = Some(self.good.map_or(self.current, |g| g.max(self.current)));
        } else {
            self.bad = Some(self.bad.map_or(self.current, |b| b.min(self.current)));
        }
        let next = match self.bad {
            // Still doubling.
            None => {
                if self.current >= self.max_rate {
                    return None;
                }
                (self.current * 2).min(self.max_rate)
            }
            Some(bad) => {
                if self.bisections_left == 0 {
                    return None;
                }
                self.bisections_left -= 1;
                let low = self.good.unwrap_or(0);
                let mid = (low + bad) / 2;
                if mid <= low || mid >= bad {
                    return None;
                }
                mid
            }
        };
        self.current = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sweep against a server whose true limit is `limit`; the rates tried.
    fn run(limit: u64, start: u64) -> (Vec<u64>, Option<u64>) {
        let mut s = Sweep::new(start, 3, 1_000_000);
        let mut tried = vec![s.current()];
        while let Some(r) = s.next(s.current() <= limit) {
            tried.push(r);
        }
        (tried, s.best())
    }

    #[test]
    fn doubles_then_bisects_three_times() {
        let (tried, best) = run(300, 20);
        assert_eq!(tried, vec![20, 40, 80, 160, 320, 240, 280, 300]);
        assert_eq!(best, Some(300));
    }

    #[test]
    fn first_step_already_too_fast() {
        let (tried, best) = run(7, 20);
        assert_eq!(tried, vec![20, 10, 5, 7]);
        assert_eq!(best, Some(7));
        let (_, best) = run(0, 20);
        assert_eq!(best, None);
    }

    #[test]
    fn a_rate_is_confirmed_by_most_repetitions() {
        assert!(confirmed(2, 3));
        assert!(confirmed(3, 3));
        assert!(!confirmed(1, 3));
        assert!(!confirmed(1, 2));
        assert!(confirmed(1, 1));
        assert!(!confirmed(0, 0));
    }

    #[test]
    fn steps_down_by_a_fifth() {
        assert_eq!(step_down(1600), Some(1280));
        assert_eq!(step_down(20), Some(16));
        assert_eq!(step_down(4), Some(3));
        assert_eq!(step_down(1), None);
    }

    #[test]
    fn stops_at_the_cap() {
        let mut s = Sweep::new(20, 3, 100);
        let mut tried = vec![s.current()];
        while let Some(r) = s.next(true) {
            tried.push(r);
        }
        assert_eq!(tried, vec![20, 40, 80, 100]);
        assert_eq!(s.best(), Some(100));
    }
}
