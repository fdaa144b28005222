//! A real browser (Debian's headless Chromium) for the dashboard's tests.
//!
//! The application's actors run on the test's own actix thread, so every blocking browser call
//! runs in `spawn_blocking`; the API is only called from the async side.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

pub use headless_chrome::Tab;
use headless_chrome::{Browser, LaunchOptions};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Generous: two Chromiums and the other tests share two cores.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `steps` against a fresh Chromium, off the actix thread, and returns what they return; a
/// failed step fails the test with its own message.
pub async fn in_browser<T: Send + 'static>(steps: impl FnOnce(&Tab) -> T + Send + 'static) -> T {
    let outcome = actix_web::rt::task::spawn_blocking(move || {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: scripts/install-deps.sh installs it"
        );
        // Chromium writes its profile until it exits: declared first, the profile goes last.
        let profile = tempfile::tempdir().expect("a temporary directory");
        let browser = Browser::new(LaunchOptions {
            path: Some(CHROMIUM.into()),
            headless: true,
            // Root in a container: Chromium's sandbox cannot start.
            sandbox: false,
            user_data_dir: Some(profile.path().to_owned()),
            window_size: Some((1400, 1000)),
            idle_browser_timeout: Duration::from_secs(120),
            // Nothing but the application: no updates, no sync, no QUIC probing.
            args: [
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ]
            .map(OsStr::new)
            .to_vec(),
            ..LaunchOptions::default()
        })
        .expect("Chromium starts");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(PAGE_TIMEOUT);
        steps(&tab)
    })
    .await;
    outcome.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// `in_browser`, with the page at `address` loaded first.
pub async fn on_page<T: Send + 'static>(
    address: String,
    steps: impl FnOnce(&Tab) -> T + Send + 'static,
) -> T {
    in_browser(move |tab| {
        open(tab, &address);
        steps(tab)
    })
    .await
}

/// `expression`'s value, through JSON: `undefined` is null, an exception a string
/// `exception: …`.
pub fn js(tab: &Tab, expression: &str) -> Value {
    let wrapped = format!(
        "(() => {{ try {{ return JSON.stringify({expression}); }} \
         catch (e) {{ return JSON.stringify('exception: ' + e); }} }})()"
    );
    match tab.evaluate(&wrapped, false) {
        Ok(object) => match object.value {
            Some(Value::String(text)) => serde_json::from_str(&text).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Err(error) => json!(format!("evaluation failed: {error}")),
    }
}

/// Polls `expression` until it is neither `false`, `null` nor an exception, and returns it.
#[track_caller]
pub fn wait_js(tab: &Tab, what: &str, expression: &str) -> Value {
    wait_js_showing(tab, what, expression, "null")
}

/// `wait_js`, telling on a timeout what `showing` (an expression) finds on the page then.
#[track_caller]
pub fn wait_js_showing(tab: &Tab, what: &str, expression: &str, showing: &str) -> Value {
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        let value = js(tab, expression);
        let failed = value
            .as_str()
            .is_some_and(|s| s.starts_with("exception: ") || s.starts_with("evaluation failed"));
        if !(value.is_null() || value == json!(false) || failed) {
            return value;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out waiting for {what}: last value {value}; the page shows {}",
                js(tab, showing)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A condition for `wait_js`: the table rows `rows` finds are exactly `expected` (their
/// `data-uuid`s, in order).
pub fn rows_are(rows: &str, expected: &[String]) -> String {
    let expected = serde_json::to_string(&expected.join(",")).unwrap();
    format!(
        "[...document.querySelectorAll('{rows}')].map(tr => tr.dataset.uuid).join() === {expected}"
    )
}

/// Clicks the element `selector` finds.
pub fn click(tab: &Tab, selector: &str) {
    tab.find_element(selector).unwrap().click().unwrap();
}

/// Loads the page at `address`.
pub fn open(tab: &Tab, address: &str) {
    tab.navigate_to(address)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
}

/// Waits for the row of the host `uri` in the dashboard's collection table to satisfy `ready`,
/// a JavaScript condition on `row`: the row's cells' text by class (`name`, `connection`, `vms`,
/// `failed`, `error`, `stats`, `stats-error`…), plus `state`, its connection badge's state.
/// Returns that row.
#[track_caller]
pub fn host_row(tab: &Tab, uri: &str, ready: &str) -> Value {
    let uri = serde_json::to_string(uri).unwrap();
    wait_js(
        tab,
        &format!("the row of host {uri} where {ready}"),
        &format!(
            "(() => {{
                 const tr = [...document.querySelectorAll('#hosts-table tbody tr')]
                     .find(tr => tr.dataset.uri === {uri});
                 if (!tr) return null;
                 const row = Object.fromEntries(
                     [...tr.cells].map(td => [td.classList[0], td.textContent]));
                 row.state = tr.querySelector('.badge').dataset.state;
                 return ({ready}) && row;
             }})()"
        ),
    )
}

/// The dashboard's line on the writer once its state is `state`.
#[track_caller]
pub fn writer_status(tab: &Tab, state: &str) -> String {
    panel_status(tab, "writer-status", state)
}

/// The actor panel's status line, once it shows `state`.
#[track_caller]
pub fn admin_status(tab: &Tab, state: &str) -> String {
    panel_status(tab, "admin-status", state)
}

/// The dashboard at `address`, in a browser of its own: the text of the element `id`, once its
/// `data-state` is `state`.
pub async fn dashboard_panel(address: &str, id: &'static str, state: &'static str) -> String {
    on_page(address.to_owned(), move |tab| panel_status(tab, id, state)).await
}

/// The text of the element `id`, once its `data-state` is `state`.
#[track_caller]
pub fn panel_status(tab: &Tab, id: &str, state: &str) -> String {
    let status = wait_js(
        tab,
        &format!("#{id} to be {state}"),
        &format!(
            "document.querySelector('#{id}').dataset.state === '{state}' && \
             document.querySelector('#{id}').textContent"
        ),
    );
    status.as_str().unwrap().to_owned()
}

/// The fleet tile `id`'s value and detail lines, once its `data-state` is `state`.
#[track_caller]
pub fn tile(tab: &Tab, id: &str, state: &str) -> (String, String) {
    let shown = wait_js(
        tab,
        &format!("the tile #{id} to be {state}"),
        &format!(
            "document.querySelector('#{id}').dataset.state === '{state}' && \
             ['value', 'detail'].map(c => document.querySelector('#{id} .' + c).textContent)"
        ),
    );
    let text = |i: usize| shown[i].as_str().unwrap().to_owned();
    (text(0), text(1))
}
