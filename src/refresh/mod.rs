//! One refresh pass: exactly what `once` runs and what the daemon will schedule.
//!
//! 1. Read what every output file holds now, and the state (last refreshes).
//! 2. Decide which profiles are due ([`due`]), and which sources they need.
//! 3. Fetch the due profiles concurrently (bounded), each chained profile after, and from, its
//!    source's fresh credentials.
//! 4. Write each output file once, with every profile fetched for it, under its lock.
//! 5. Record the outcome of every profile in the state file.
//!
//! One profile failing never stops the others.

pub mod due;
pub mod limits;

use crate::config::Config;
use crate::credentials::{format_utc, Credentials};
use crate::profile_file::edit;
use crate::sources::sso::session::LoginMode;
use crate::sources::{ErrorKind, FetchResult, SourceError};
use crate::store::state::{self, StateFile};
use crate::store::CredentialsFile;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore};

use crate::sources::fetch::{BoxFuture, Fetcher, Sources};

/// Options of one pass.
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    /// Refresh every selected profile, due or not.
    pub force: bool,
    /// Only these profiles and the profiles they chain from (empty: all).
    pub only: Vec<String>,
    /// Never start an SSO sign-in: profiles that need one fail at once.
    pub no_login: bool,
    /// Re-run sources whose credentials do not expire this long after their last refresh
    /// (the daemon: hourly; `once`: never, unless forced).
    pub unexpiring_every: Option<std::time::Duration>,
    /// Profiles not to attempt in this pass (the daemon's backoff after failures).
    pub skip: BTreeSet<String>,
    /// The failure last told for a profile, by kind and message: the same one again is
    /// logged at `debug` (the daemon tells a permanent failure once per change of message,
    /// and a wait for a sign-in once).
    pub told: BTreeMap<String, (ErrorKind, String)>,
    /// Sign-ins run in the background (the daemon): a profile waiting for one is not told as
    /// failed (the scheduler tells the wait, and the sign-in itself is told once at `warn`
    /// with its URL and code).
    pub background_sign_ins: bool,
    /// Where outputs' `on_change` hooks run (none: not run).
    pub hooks: Option<Arc<crate::hooks::Hooks>>,
    /// Profiles due within their refresh margin divided by this join the pass (see
    /// [`due::join_window`]), so that one rewrite of a file serves a batch of profiles falling
    /// due a little apart; `None` (`once`, `credential-process`): only those due now.
    pub join_divisor: Option<u32>,
}

/// What happened to one profile in a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Fetched and written to every output that holds it.
    Refreshed { expires: Option<OffsetDateTime> },
    /// Still fresh; nothing to do.
    NotDue,
    /// Fetched only as the source of a chained profile (it is in no output); recorded in the
    /// state file like a refresh, since that record is all `status` has to go by.
    UsedAsSource { expires: Option<OffsetDateTime> },
    /// Failed: what kind of failure (which decides the daemon's retry), and the message naming
    /// the profile's problem (never a secret).
    Failed(SourceError),
    /// Some of the profile's outputs cannot be used as they are (unparseable, refused): they
    /// are left untouched and reported with `error` at every pass until fixed, while its other
    /// outputs are kept fresh as if the broken ones were not there (so not refreshed at every
    /// pass: no source run, no new keys, no `on_change`). `refreshed`: this pass was due, and
    /// wrote credentials expiring then (`Some(None)`: never) to the other outputs.
    BrokenOutputs {
        refreshed: Option<Option<OffsetDateTime>>,
        error: SourceError,
    },
}

/// The outcome of every profile a pass looked at.
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub outcomes: BTreeMap<String, Outcome>,
}

impl PassReport {
    pub fn failed(&self) -> impl Iterator<Item = (&String, &String)> {
        self.outcomes.iter().filter_map(|(n, o)| match o {
            Outcome::Failed(e) | Outcome::BrokenOutputs { error: e, .. } => Some((n, &e.message)),
            _ => None,
        })
    }
}

/// Unknown `--profile` names.
#[derive(Debug)]
pub struct UnknownProfiles(pub Vec<String>);

impl std::fmt::Display for UnknownProfiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not a managed profile: {} (see `awscredd check`)",
            self.0.join(", ")
        )
    }
}

/// The profiles a pass covers: `only` and everything they chain from, or all.
pub fn selection(cfg: &Config, only: &[String]) -> Result<BTreeSet<String>, UnknownProfiles> {
    if only.is_empty() {
        return Ok(cfg.profiles.keys().cloned().collect());
    }
    let unknown: Vec<String> = only
        .iter()
        .filter(|n| !cfg.profiles.contains_key(*n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(UnknownProfiles(unknown));
    }
    let mut out = BTreeSet::new();
    for name in only {
        out.extend(cfg.chain(name).map(|p| p.name.clone()));
    }
    Ok(out)
}

/// How long a pass waits for all its sources before it writes what is ready.
pub const WRITE_WAVE: std::time::Duration = std::time::Duration::from_secs(5);

/// Per file written: the profiles in it, and whether the bytes changed or why it failed.
/// Profiles and the credentials to write for them.
type Profiles = Vec<(String, Credentials)>;

/// Per output written: its index, the profiles written to it, and whether its bytes changed.
type WriteResults = Vec<WriteResult>;

/// One output's entry in [`WriteResults`] (or a profile refused alone).
type WriteResult = (usize, Vec<String>, Result<bool, SourceError>);

/// What one pass writes with: the files, what they held at the start of the pass (to tell which
/// profiles' credentials a write changed), and where `on_change` hooks run.
struct Writer<'a> {
    cfg: &'a Config,
    files: &'a [CredentialsFile],
    before: &'a [BTreeMap<String, Credentials>],
    hooks: Option<&'a Arc<crate::hooks::Hooks>>,
}

/// One locked write of an output file: its index, the file, and the profiles to write to it.
type FileWrite = (usize, CredentialsFile, Profiles);

/// What the writes of a pass did: per profile, the errors of the outputs it could not be
/// written to, and the profiles written to at least one output.
#[derive(Default)]
struct Writes {
    errors: BTreeMap<String, SourceError>,
    wrote: BTreeSet<String>,
}

/// Writes every fetched profile not written yet to its output files, one locked write per
/// file, in a blocking thread; records write failures per profile, and starts the `on_change`
/// of each file whose credentials changed.
async fn write_ready(
    w: &Writer<'_>,
    fetched: &BTreeMap<String, FetchResult>,
    written: &mut BTreeSet<String>,
    writes_done: &mut Writes,
) {
    let writes = w.pending(fetched, written);
    for (name, res) in fetched {
        if res.is_ok() {
            written.insert(name.clone());
        }
    }
    let attempted: Vec<String> = writes
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|(n, _)| n.clone()))
        .collect();
    let changes = w.changes(&writes);
    let results: Result<WriteResults, _> =
        tokio::task::spawn_blocking(move || writes.into_iter().flat_map(write_one).collect()).await;
    // If the writing thread itself failed, nothing it held can be counted as written.
    let results = results.unwrap_or_else(|e| {
        vec![(
            usize::MAX,
            attempted,
            Err(SourceError::transient(format!("the writer failed: {e}"))),
        )]
    });
    for (i, names, res) in results {
        // The file is in place and synced: tell its readers, if its credentials changed.
        if let (Ok(true), Some(hooks), Some(output)) = (&res, w.hooks, w.cfg.outputs.get(i)) {
            let mut changed = changes.get(&i).cloned().unwrap_or_default();
            changed.retain(|n| names.contains(n));
            hooks.changed(output, changed);
        }
        match res {
            Ok(_) => writes_done.wrote.extend(names),
            // Every output's error is told, not only the first.
            Err(e) => {
                for n in names {
                    record_write_error(&mut writes_done.errors, n, &e);
                }
            }
        }
    }
}

impl Writer<'_> {
    /// Per output file with fetched profiles not written yet: those profiles.
    fn pending(
        &self,
        fetched: &BTreeMap<String, FetchResult>,
        written: &BTreeSet<String>,
    ) -> Vec<FileWrite> {
        self.cfg
            .outputs
            .iter()
            .zip(self.files)
            .enumerate()
            .map(|(i, (o, f))| {
                let profiles = o
                    .profiles
                    .iter()
                    .filter(|p| !written.contains(*p))
                    .filter_map(|p| match fetched.get(p) {
                        Some(Ok(c)) => Some((p.clone(), c.clone())),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                (i, f.clone(), profiles)
            })
            .filter(|(_, _, p)| !p.is_empty())
            .collect()
    }

    /// Which profiles' credentials each write would change, against what the file held.
    fn changes(&self, writes: &[FileWrite]) -> BTreeMap<usize, Vec<String>> {
        writes
            .iter()
            .map(|(i, _, profiles)| {
                let held = self.before.get(*i);
                let changed = profiles
                    .iter()
                    .filter(|(n, c)| held.and_then(|h| h.get(n)) != Some(c))
                    .map(|(n, _)| n.clone())
                    .collect();
                (*i, changed)
            })
            .collect()
    }
}

/// One output file's write (blocking): the profiles written and whether the bytes changed,
/// then each profile whose section could not be written, failed alone.
fn write_one((i, file, profiles): FileWrite) -> impl Iterator<Item = WriteResult> {
    // A profile whose section cannot be written fails alone; the others are written.
    let mut refused = Vec::new();
    let res = file
        .write_refusing(&profiles, &mut refused)
        .map_err(|e| write_error(&e));
    if let Ok(changed) = &res {
        tracing::debug!(path = %file.path.display(), changed, "wrote credentials file");
    }
    let names = profiles
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| refused.iter().all(|(r, _)| r != n))
        .collect();
    let refused = refused
        .into_iter()
        .map(move |(n, e)| (i, vec![n], Err(write_error(&e))));
    std::iter::once((i, names, res)).chain(refused)
}

/// Adds the write error `e` to profile `n`'s: each message once, and permanent if any is.
fn record_write_error(
    write_errors: &mut BTreeMap<String, SourceError>,
    n: String,
    e: &SourceError,
) {
    write_errors
        .entry(n)
        .and_modify(|m| {
            if !m.message.contains(e.message.as_str()) {
                m.message.push_str("; ");
                m.message.push_str(&e.message);
            }
            // A permanent problem in any output makes the whole failure permanent.
            if e.kind == crate::sources::ErrorKind::Failed {
                m.kind = e.kind;
            }
        })
        .or_insert_with(|| e.clone());
}

/// A failed write as a source error: a file that cannot be used as it is (unparseable, refused,
/// a device, an unknown owner) fails the same way until someone fixes it; I/O and lock waits
/// may pass.
fn write_error(e: &crate::store::StoreError) -> SourceError {
    use crate::store::StoreError;
    let permanent = match e {
        StoreError::Unparseable { .. }
        | StoreError::Edit { .. }
        | StoreError::Format { .. }
        | StoreError::UnknownOwner { .. } => true,
        StoreError::Lock { .. } => false,
        StoreError::Io { error, .. } => matches!(
            error.kind(),
            std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::NotADirectory
        ),
    };
    if permanent {
        SourceError::failed(e.to_string())
    } else {
        SourceError::transient(e.to_string())
    }
}

/// What the output files and the state file hold, read once per pass.
pub struct Snapshot {
    /// Per output (in config order), the credentials of every profile in the file.
    stored: Vec<BTreeMap<String, Credentials>>,
    /// Per output (in config order), why it cannot be used as it is (unparseable, refused:
    /// what a write would fail on for good), if so. A broken output is left out of when its
    /// profiles are due, and reported at every pass.
    broken: Vec<Option<SourceError>>,
    state: crate::store::state::State,
}

impl Snapshot {
    /// Reads every output file (one that cannot be read holds nothing) and the state.
    pub async fn read(cfg: &Config) -> Snapshot {
        let files: Vec<CredentialsFile> = cfg
            .outputs
            .iter()
            .map(CredentialsFile::from_output)
            .collect();
        let state_file = StateFile::in_dir(&cfg.daemon.state_dir);
        tokio::task::spawn_blocking(move || {
            let mut stored = Vec::new();
            let mut broken = Vec::new();
            for f in &files {
                let (held, error) = match f.read() {
                    Ok(held) => (held, None),
                    // A transient problem (I/O) holds nothing: the profile is due, and the
                    // write tells why if it persists.
                    Err(e) => (
                        BTreeMap::new(),
                        Some(write_error(&e)).filter(|e| e.kind == ErrorKind::Failed),
                    ),
                };
                stored.push(held);
                broken.push(error);
            }
            Snapshot {
                stored,
                broken,
                state: state_file.load(),
            }
        })
        .await
        .unwrap_or(Snapshot {
            stored: Vec::new(),
            broken: Vec::new(),
            state: Default::default(),
        })
    }

    /// What each output that should hold `name` holds for it, but the broken ones.
    fn holders<'a>(&'a self, cfg: &Config, name: &str) -> Vec<Option<&'a Credentials>> {
        cfg.output_indexes(name)
            .iter()
            .filter(|&&i| self.broken.get(i).is_some_and(Option::is_none))
            .map(|&i| self.stored.get(i).and_then(|s| s.get(name)))
            .collect()
    }

    /// Why outputs that should hold `name` cannot be used as they are, if any is broken.
    pub fn broken_outputs(&self, cfg: &Config, name: &str) -> Option<SourceError> {
        let mut errors = BTreeMap::new();
        for &i in cfg.output_indexes(name) {
            if let Some(Some(e)) = self.broken.get(i) {
                record_write_error(&mut errors, name.to_string(), e);
            }
        }
        errors.remove(name)
    }

    /// The refresh margin of `name`'s credentials (see [`due::refresh_margin`]): of the first
    /// to expire of what its outputs hold (or of its record, for a profile only used as a
    /// source); `None` when nothing held expires.
    pub fn margin(&self, cfg: &Config, name: &str) -> Option<time::Duration> {
        let recorded = self.state.profiles.get(name);
        let last_refresh = recorded
            .and_then(|p| p.last_refresh.as_deref())
            .and_then(|t| crate::credentials::parse_rfc3339(t).ok());
        let holders = self.holders(cfg, name);
        let expires = if holders.is_empty() {
            recorded
                .and_then(|p| p.expires_at.as_deref())
                .map(crate::credentials::held_expiry)
        } else {
            holders.iter().flatten().filter_map(|c| c.expiration).min()
        }?;
        Some(due::refresh_margin(
            expires,
            last_refresh,
            cfg.daemon.refresh_before,
        ))
    }

    /// When `name` becomes due (see [`due::due_at`]); `None` for a profile in no output that
    /// is no source either. A profile in no output (only the source of others) goes by its
    /// record in the state file, which is what `status` shows for it:
    /// due at once if it was never refreshed, else by the expiry recorded.
    pub fn due_at(
        &self,
        cfg: &Config,
        name: &str,
        unexpiring_every: Option<std::time::Duration>,
    ) -> Option<OffsetDateTime> {
        let recorded = self.state.profiles.get(name);
        let last_refresh = recorded
            .and_then(|p| p.last_refresh.as_deref())
            .and_then(|t| crate::credentials::parse_rfc3339(t).ok());
        let holders = self.holders(cfg, name);
        if holders.is_empty() {
            if !cfg.is_source(name) {
                return None;
            }
            let Some(last) = last_refresh else {
                return Some(OffsetDateTime::UNIX_EPOCH);
            };
            let expires = recorded
                .and_then(|p| p.expires_at.as_deref())
                .map(crate::credentials::held_expiry);
            return match expires {
                Some(e) => {
                    Some(e - due::refresh_margin(e, last_refresh, cfg.daemon.refresh_before))
                }
                None => unexpiring_every.map(|every| {
                    last + time::Duration::try_from(every).unwrap_or(time::Duration::HOUR)
                }),
            };
        }
        due::due_at(
            &holders,
            last_refresh,
            recorded.and_then(|p| p.written_key.as_deref()),
            cfg.daemon.refresh_before,
            unexpiring_every,
        )
    }
}

/// Runs one pass with the real sources.
pub async fn run_pass(cfg: &Config, opts: &PassOptions) -> Result<PassReport, UnknownProfiles> {
    let login = if opts.no_login {
        LoginMode::Never
    } else {
        LoginMode::Unattended {
            login_command: cfg.daemon.login_command.clone(),
            background: None,
        }
    };
    let fetcher = Arc::new(Sources::new(cfg, login));
    run_pass_with(cfg, opts, fetcher, crate::clock::now()).await
}

/// Runs one pass with `fetcher` at time `now`.
pub async fn run_pass_with(
    cfg: &Config,
    opts: &PassOptions,
    fetcher: Arc<dyn Fetcher>,
    now: OffsetDateTime,
) -> Result<PassReport, UnknownProfiles> {
    let selected = selection(cfg, &opts.only)?;
    // 1. What the files hold now. A file we cannot read holds nothing usable; its write will
    //    fail below with the reason, naming file and line.
    let snapshot = Snapshot::read(cfg).await;
    // 2. Which profiles are due, and the managed sources they need.
    let (due, current) = due_profiles(cfg, opts, &snapshot, &selected, now);
    // 3. Fetch them, chains in order, at most `max_concurrent_fetches` sources at once;
    // 4. each output file written once with every profile fetched for it.
    let (fetched, writes) = fetch_and_write(cfg, opts, &snapshot, due, current, fetcher).await;
    // 4b. A file whose mode someone loosened gets the configured one back, written or not.
    restore_modes(cfg).await;
    // 5. Outcomes, logs and state.
    let report = outcomes(cfg, opts, &selected, &fetched, &writes, &snapshot);
    record(cfg, &report, now).await;
    Ok(report)
}

/// Step 4b: every output's mode as configured (SPEC: never looser than configured), also
/// where this pass wrote nothing. Failures are the writes' business: logged at `debug`.
async fn restore_modes(cfg: &Config) {
    let files: Vec<CredentialsFile> = cfg
        .outputs
        .iter()
        .map(CredentialsFile::from_output)
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for f in &files {
            match f.restore_mode() {
                Ok(Some(had)) => tracing::warn!(
                    path = %f.path.display(),
                    "the mode of `{}` was {had:04o}: set back to {:04o}, as configured",
                    f.path.display(),
                    f.mode
                ),
                Ok(None) => {}
                Err(e) => tracing::debug!("{e}"),
            }
        }
    })
    .await;
}

/// Step 2: the selected profiles that are due (forced, or by [`due`]) and the managed sources
/// they need (fetched too, unless what the files hold for them is fresh); and what the files
/// hold now for the profiles that are not fetched.
fn due_profiles(
    cfg: &Config,
    opts: &PassOptions,
    snapshot: &Snapshot,
    selected: &BTreeSet<String>,
    now: OffsetDateTime,
) -> (BTreeSet<String>, BTreeMap<String, Credentials>) {
    let mut current: BTreeMap<String, Credentials> = BTreeMap::new();
    let mut due: BTreeSet<String> = BTreeSet::new();
    for name in selected {
        if opts.skip.contains(name) {
            continue;
        }
        let holders = snapshot.holders(cfg, name);
        let window = opts
            .join_divisor
            .and_then(|d| Some(due::join_window(snapshot.margin(cfg, name)?, d)))
            .unwrap_or(time::Duration::ZERO);
        let is_due = opts.force
            || snapshot
                .due_at(cfg, name, opts.unexpiring_every)
                .is_some_and(|t| t < now + window);
        if let Some(Some(c)) = holders.first() {
            current.insert(name.clone(), (*c).clone());
        }
        if is_due {
            due.insert(name.clone());
        }
    }
    let mut needed: Vec<String> = due.iter().cloned().collect();
    while let Some(name) = needed.pop() {
        if let Some(src) = cfg.profiles[&name].source.source_profile() {
            if cfg.profiles.contains_key(src) && !due.contains(src) {
                let fresh = current.get(src).is_some_and(|c| {
                    !due::is_due(&[Some(c)], None, None, cfg.daemon.refresh_before, now)
                });
                if !fresh {
                    due.insert(src.to_string());
                    needed.push(src.to_string());
                }
            }
        }
    }
    (due, current)
}

/// Steps 3 and 4: every due profile fetched, and written as it becomes ready. A source still
/// busy after [`WRITE_WAVE`] (a slow process, an SSO sign-in waiting for a human) does not
/// hold the others back: what is ready by then is written, and the rest when it comes.
async fn fetch_and_write(
    cfg: &Config,
    opts: &PassOptions,
    snapshot: &Snapshot,
    due: BTreeSet<String>,
    current: BTreeMap<String, Credentials>,
    fetcher: Arc<dyn Fetcher>,
) -> (BTreeMap<String, FetchResult>, Writes) {
    let resolver = Arc::new(Resolver {
        cfg: cfg.clone(),
        cells: due.iter().map(|n| (n.clone(), OnceCell::new())).collect(),
        due,
        current,
        permits: Semaphore::new(cfg.daemon.max_concurrent_fetches),
        limits: limits::Limits::new(cfg.daemon.max_concurrent_fetches),
        fetcher,
    });
    let mut tasks = tokio::task::JoinSet::new();
    // Which profile each task fetches, so that one that panics (a bug in a library it calls)
    // fails its profile instead of vanishing from the pass.
    let mut task_profiles: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
    for name in &resolver.due {
        let r = resolver.clone();
        let owned = name.clone();
        let handle = tasks.spawn(async move {
            let res = r.resolve(&owned).await;
            (owned, res)
        });
        task_profiles.insert(handle.id(), name.clone());
    }
    let files: Vec<CredentialsFile> = cfg
        .outputs
        .iter()
        .map(CredentialsFile::from_output)
        .collect();
    let writer = Writer {
        cfg,
        files: &files,
        before: &snapshot.stored,
        hooks: opts.hooks.as_ref(),
    };
    let mut fetched: BTreeMap<String, FetchResult> = BTreeMap::new();
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut writes = Writes::default();
    let wave = tokio::time::sleep(WRITE_WAVE);
    tokio::pin!(wave);
    let mut waved = false;
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok((name, res))) => {
                    fetched.insert(name, res);
                }
                Some(Err(e)) => {
                    let id = e.id();
                    let message = task_failure(e);
                    tracing::error!("a fetch task failed: {message}");
                    if let Some(name) = task_profiles.get(&id) {
                        fetched.insert(name.clone(), Err(SourceError::failed(message)));
                    }
                }
            },
            _ = &mut wave, if !waved => {
                waved = true;
                if !fetched.is_empty() {
                    tracing::info!(waiting = tasks.len(), "writing what is ready while slower sources finish");
                    write_ready(&writer, &fetched, &mut written, &mut writes).await;
                }
            }
        }
    }
    write_ready(&writer, &fetched, &mut written, &mut writes).await;
    (fetched, writes)
}

/// What a fetch task that did not finish says: its panic's message, or why it ended.
fn task_failure(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            format!("the source failed unexpectedly (a panic: {what})")
        }
        Err(e) => format!("the source's task ended: {e}"),
    }
}

/// Step 5a: the outcome of every selected profile, logged (a failure already told at `debug`).
fn outcomes(
    cfg: &Config,
    opts: &PassOptions,
    selected: &BTreeSet<String>,
    fetched: &BTreeMap<String, FetchResult>,
    writes: &Writes,
    snapshot: &Snapshot,
) -> PassReport {
    let mut report = PassReport::default();
    for name in selected {
        let outcome = outcome_of(cfg, name, fetched.get(name), writes, snapshot);
        tell(cfg, opts, name, &outcome, fetched.get(name));
        report.outcomes.insert(name.clone(), outcome);
    }
    report
}

/// The outcome of profile `name`: what its fetch and its writes did, and whether outputs of
/// it are broken.
fn outcome_of(
    cfg: &Config,
    name: &str,
    fetched: Option<&FetchResult>,
    writes: &Writes,
    snapshot: &Snapshot,
) -> Outcome {
    let in_outputs = cfg.outputs_of(name).next().is_some();
    match fetched {
        None => match snapshot.broken_outputs(cfg, name) {
            Some(error) => Outcome::BrokenOutputs {
                refreshed: None,
                error,
            },
            None => Outcome::NotDue,
        },
        Some(Err(e)) => Outcome::Failed(e.clone()),
        // Written to some outputs and refused for good by others: those are broken, and
        // reported; the profile is fresh where it could be written.
        Some(Ok(c))
            if writes.wrote.contains(name)
                && writes
                    .errors
                    .get(name)
                    .is_some_and(|e| e.kind == ErrorKind::Failed) =>
        {
            Outcome::BrokenOutputs {
                refreshed: Some(c.expiration),
                error: writes.errors[name].clone(),
            }
        }
        Some(Ok(_)) if writes.errors.contains_key(name) => {
            Outcome::Failed(writes.errors[name].clone())
        }
        Some(Ok(c)) if !in_outputs => Outcome::UsedAsSource {
            expires: c.expiration,
        },
        Some(Ok(c)) => Outcome::Refreshed {
            expires: c.expiration,
        },
    }
}

/// Logs a profile's outcome: a failure already told (`opts.told`) again at `debug`.
fn tell(
    cfg: &Config,
    opts: &PassOptions,
    name: &str,
    outcome: &Outcome,
    fetched: Option<&FetchResult>,
) {
    let source = cfg.profiles[name].source.kind();
    let told_before = |e: &SourceError| {
        opts.told.get(name).is_some_and(|(kind, told)| {
            *told == e.message
                || (*kind == ErrorKind::NeedsLogin && e.kind == ErrorKind::NeedsLogin)
        })
    };
    let key = || {
        fetched
            .and_then(|f| f.as_ref().ok())
            .map(|c| c.masked_key_id())
            .unwrap_or_default()
    };
    match outcome {
        Outcome::Refreshed { expires }
        | Outcome::BrokenOutputs {
            refreshed: Some(expires),
            ..
        } => tracing::info!(
            profile = %name,
            source,
            key = %key(),
            expires_at = %expires.map(format_utc).unwrap_or_else(|| "never".into()),
            "refreshed"
        ),
        _ => {}
    }
    match outcome {
        // A transient failure is told at every attempt (they are spaced by the backoff);
        // the same permanent one, or the same wait for a sign-in, once.
        Outcome::Failed(e) | Outcome::BrokenOutputs { error: e, .. }
            if told_before(e) && !matches!(e.kind, ErrorKind::Transient | ErrorKind::Throttled) =>
        {
            tracing::debug!(profile = %name, source, "refresh failed again: {}", e.message)
        }
        Outcome::Failed(e) if e.kind == ErrorKind::NeedsLogin && opts.background_sign_ins => {
            tracing::debug!(profile = %name, source, "waiting for a sign-in: {}", e.message)
        }
        Outcome::Failed(e) if matches!(e.kind, ErrorKind::Transient | ErrorKind::Throttled) => {
            tracing::warn!(profile = %name, source, "refresh failed, will retry: {}", e.message)
        }
        Outcome::Failed(e) => {
            tracing::error!(profile = %name, source, "refresh failed: {}", e.message)
        }
        Outcome::BrokenOutputs { error, .. } => tracing::error!(
            profile = %name,
            source,
            "an output cannot be written, the others are kept fresh: {}",
            error.message
        ),
        Outcome::NotDue => tracing::debug!(profile = %name, "not due"),
        Outcome::UsedAsSource { .. } => {
            tracing::debug!(profile = %name, "fetched as a source")
        }
        Outcome::Refreshed { .. } => {}
    }
}

/// Step 5b: the outcomes recorded in the state file (a failure to record is logged: `status`
/// will be incomplete, nothing else depends on it).
async fn record(cfg: &Config, report: &PassReport, now: OffsetDateTime) {
    let state_file = StateFile::in_dir(&cfg.daemon.state_dir);
    let outcomes = report.outcomes.clone();
    let kinds: BTreeMap<String, &'static str> = outcomes
        .keys()
        .map(|n| (n.clone(), cfg.profiles[n].source.kind()))
        .collect();
    let update = tokio::task::spawn_blocking(move || {
        state_file.update(|s| {
            for (name, o) in &outcomes {
                match o {
                    Outcome::Refreshed { expires } | Outcome::UsedAsSource { expires } => {
                        state::record_success(s, name, kinds[name], now, *expires)
                    }
                    Outcome::Failed(e) => {
                        state::record_failure(s, name, kinds[name], now, &e.message)
                    }
                    Outcome::BrokenOutputs { refreshed, error } => {
                        if let Some(expires) = refreshed {
                            state::record_success(s, name, kinds[name], now, *expires);
                        }
                        state::record_error(s, name, kinds[name], &error.message);
                    }
                    Outcome::NotDue => {}
                }
            }
        })
    })
    .await;
    match update {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(
            path = %cfg.daemon.state_dir.display(),
            "cannot record state (status will be incomplete): {e}"
        ),
        Err(e) => tracing::warn!("cannot record state: {e}"),
    }
}

/// Resolves each due profile once, chained profiles after their sources.
struct Resolver {
    cfg: Config,
    due: BTreeSet<String>,
    /// What the files hold now, for sources that are not due.
    current: BTreeMap<String, Credentials>,
    cells: BTreeMap<String, OnceCell<FetchResult>>,
    /// At most `max_concurrent_fetches` sources at once, whatever the service.
    permits: Semaphore,
    /// Per service, fewer at once while it throttles.
    limits: limits::Limits,
    fetcher: Arc<dyn Fetcher>,
}

impl Resolver {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, FetchResult> {
        Box::pin(async move {
            if !self.due.contains(name) {
                return self.current.get(name).cloned().ok_or_else(|| {
                    SourceError::failed(format!("no credentials for profile `{name}`"))
                });
            }
            let cell = &self.cells[name];
            cell.get_or_init(|| self.fetch(name)).await.clone()
        })
    }

    async fn fetch(&self, name: &str) -> FetchResult {
        let profile = &self.cfg.profiles[name];
        let source_credentials = match profile.source.source_profile() {
            None => None,
            Some(src) if self.cfg.profiles.contains_key(src) => {
                Some(self.resolve(src).await.map_err(|e| SourceError {
                    kind: e.kind,
                    message: format!("source profile `{src}` failed: {}", e.message),
                })?)
            }
            Some(src) => Some(crate::sources::fetch::unmanaged(src).await?),
        };
        let service = crate::sources::fetch::service_of(&self.cfg, profile);
        let mut tries = 0;
        let credentials = loop {
            tries += 1;
            let slot = match &service {
                Some(s) => {
                    let slot = self.limits.acquire(s).await;
                    if self.limits.gave_up(s) {
                        return Err(SourceError::throttled(format!(
                            "throttled: {s} refused {} requests in a row, even one at a time; \
                             it is not asked again in this pass (the next one tries again)",
                            limits::GIVE_UP_AFTER
                        )));
                    }
                    Some(slot)
                }
                None => None,
            };
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| SourceError::failed(e.to_string()))?;
            let res = self
                .fetcher
                .fetch(profile, source_credentials.clone())
                .await;
            let epoch = slot.as_ref().map_or(0, limits::Slot::epoch);
            drop(slot);
            let Some(s) = &service else { break res? };
            match res {
                Err(e) if e.kind == ErrorKind::Throttled => {
                    self.limits.throttled(s, epoch);
                    if tries >= limits::MAX_THROTTLED_TRIES {
                        return Err(e);
                    }
                    // A pause that grows, with jitter, before this profile is tried again.
                    let base = 200u64 << tries.min(5);
                    let jitter = u64::from(name.bytes().fold(0u8, |a, b| a.wrapping_add(b)));
                    tokio::time::sleep(std::time::Duration::from_millis(base + jitter * 4)).await;
                }
                Err(e) => return Err(e),
                Ok(c) => {
                    self.limits.succeeded(s);
                    break c;
                }
            }
        };
        // A value no file could hold fails this profile alone, not the files it shares.
        edit::check_update(&crate::store::update_for(name, &credentials))
            .map_err(|e| SourceError::failed(e.to_string()))?;
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;

    /// A source that panics (a library bug, e.g. a TLS set-up that cannot load any CA).
    struct Panics;

    impl Fetcher for Panics {
        fn fetch<'a>(
            &'a self,
            _profile: &'a Profile,
            _source: Option<Credentials>,
        ) -> BoxFuture<'a, FetchResult> {
            Box::pin(async { panic!("no CA certificates found") })
        }
    }

    #[tokio::test]
    async fn a_source_that_panics_fails_its_profile_instead_of_vanishing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[daemon]\nstate_dir = \"state\"\n[[output]]\npath = \"credentials\"\n\
             [profile.a]\ncredential_process = \"x\"\n",
        )
        .unwrap();
        let (cfg, _) = crate::config::load(&path, &|_| None).unwrap();
        let report = run_pass_with(
            &cfg,
            &PassOptions::default(),
            Arc::new(Panics),
            crate::clock::now(),
        )
        .await
        .unwrap();
        match &report.outcomes["a"] {
            Outcome::Failed(e) => {
                assert!(e.message.contains("no CA certificates found"), "{e:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(report.failed().count(), 1);
    }
}
