//! `report.html` in a real browser: Debian's Chromium, driven over WebDriver
//! by chromedriver, opens the page from `file://` as a reviewer would. A
//! real run of three objects on two real kernels (twice, for a history)
//! gives the page; the grid, its filters, a cell's log, the charts, the
//! absence of any network request or console error, and axe-core's
//! accessibility rules are asserted in the page. Hostile names render as
//! text. A screenshot is left in `target/tmp/report-html.png`.
//!
//! Needs `chromium`, `chromium-driver` (apt) and axe-core (`npm ci` in
//! `tests/browser`): `scripts/install-deps.sh` installs all three.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::truth::build_corpus;
use common::*;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The whole browser session of a test; a hang fails instead of stalling.
const SESSION_LIMIT: Duration = Duration::from_secs(180);

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let program = std::env::var("BPFCOMPAT_CHROMEDRIVER").unwrap_or("chromedriver".into());
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program}: {e}: scripts/install-deps.sh installs chromium-driver")
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().unwrap(),
    }
}

/// A headless Chromium session with its console and network logged.
async fn session(driver: &Driver) -> Client {
    let chromium = std::env::var("BPFCOMPAT_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let caps: Capabilities = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": chromium,
            // Without the background-networking flags Chromium itself calls
            // home; those are the browser's requests, not the page's, and
            // are refused by a closed network anyway.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--window-size=1280,1000",
                     format!("--user-data-dir={}", driver._profile.path().display())],
        },
        "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
    }))
    .unwrap();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session (chromium is installed by scripts/install-deps.sh)")
}

/// chromedriver's log endpoint: the browser's console, or the page's
/// DevTools events (`performance`), since the last read.
#[derive(Debug)]
struct Log(&'static str);

impl WebDriverCompatibleCommand for Log {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": self.0}).to_string()),
        )
    }
}

async fn log(client: &Client, kind: &'static str) -> Vec<Value> {
    let entries = client.issue_cmd(Log(kind)).await.unwrap();
    entries.as_array().cloned().unwrap_or_default()
}

/// What every page must be: no request but the page's own file, no
/// console error (a CSP violation would be one), no serious or critical
/// accessibility violation by axe-core.
async fn assert_clean(client: &Client, page: &str) {
    let requests: Vec<Value> = log(client, "performance")
        .await
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        .map(|m| m["message"]["params"].clone())
        .collect();
    // The page's document, and whatever it asked for (its loader's).
    let document = requests
        .iter()
        .find(|r| r["request"]["url"] == page)
        .unwrap_or_else(|| panic!("the performance log has no load of {page}: {requests:?}"));
    let asked: Vec<&Value> = requests
        .iter()
        .filter(|r| r["loaderId"] == document["loaderId"])
        .map(|r| &r["request"]["url"])
        .collect();
    assert_eq!(asked, [page], "the page asked for more than itself");
    let errors: Vec<Value> = log(client, "browser")
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    client.execute(&axe_source(), vec![]).await.unwrap();
    let axe = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document)
                .then(r => done({rules: r.passes.length,
                    violations: r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}))
                .catch(e => done({rules: 0, violations: [String(e)]}));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        axe["violations"],
        json!([]),
        "axe-core: serious or critical violations"
    );
    assert!(
        axe["rules"].as_u64() > Some(10),
        "axe-core checked the page: {axe}"
    );
}

fn axe_source() -> String {
    let path = std::env::var_os("BPFCOMPAT_AXE_JS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: scripts/install-deps.sh installs axe-core (npm ci --prefix tests/browser)",
            path.display()
        )
    })
}

/// Runs `body` against a fresh session; the session is closed either way.
fn with_browser<F>(body: F)
where
    F: AsyncFnOnce(&Client),
{
    let driver = chromedriver();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = session(&driver).await;
            let outcome = tokio::time::timeout(SESSION_LIMIT, body(&client)).await;
            let _ = client.close().await;
            outcome.expect("the browser session finished within its limit");
        });
}

fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path).unwrap().to_string()
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn visible_rows(client: &Client) -> Vec<String> {
    let rows = js(
        client,
        "return [...document.querySelectorAll('table.grid tbody tr')]
            .filter(tr => tr.offsetParent !== null).map(tr => tr.dataset.object);",
    )
    .await;
    serde_json::from_value(rows).unwrap()
}

/// By object, by kernel (in the matrix's order), the status word a cell
/// should show, read from the run's JSON.
fn statuses(report: &Value) -> Vec<(String, Vec<String>)> {
    let targets = report["targets"].as_array().unwrap();
    let objects: Vec<&str> = targets[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["artifact"]["name"].as_str().unwrap())
        .collect();
    objects
        .iter()
        .map(|o| {
            let cells = targets
                .iter()
                .map(|t| {
                    let check = t["checks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|c| c["artifact"]["name"] == *o)
                        .unwrap();
                    check["status"].as_str().unwrap().to_string()
                })
                .collect();
            (o.to_string(), cells)
        })
        .collect()
}

/// Three objects on 5.10 and 6.12: `xdp` passes on both, `bpf_loop` fails
/// on 5.10 only (the helper arrived in 5.17), `fentry_missing` fails on
/// both. Run twice, so the history chart has two runs.
#[test]
fn a_real_run_reads_right_in_chromium() {
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let matrix = s.matrix(&[(&K510, ""), (&K612, "")]);
    let page = s.path("report.html");
    let mut args = vec!["test", "--matrix", matrix.to_str().unwrap()];
    let objects: Vec<String> = ["xdp", "bpf_loop", "fentry_missing"]
        .iter()
        .map(|o| corpus.join(format!("{o}.bpf.o")).display().to_string())
        .collect();
    for o in &objects {
        args.extend(["--artifact", o.as_str()]);
    }
    args.extend(["--html", page.to_str().unwrap()]);
    let run = {
        let _lock = boot_lock();
        s.run(&args);
        s.run(&args)
    };
    assert_eq!(run.code, 2, "{}", run.context());
    let expected = statuses(run.report());
    assert_eq!(
        expected,
        [
            ("xdp.bpf.o", ["pass", "pass"]),
            ("bpf_loop.bpf.o", ["fail", "pass"]),
            ("fentry_missing.bpf.o", ["fail", "fail"]),
        ]
        .map(|(o, c)| (o.to_string(), c.map(String::from).to_vec()))
    );
    // The verifier's words for bpf_loop on 5.10, as the JSON has them.
    let check = &run.report()["targets"][0]["checks"][1];
    let log_line = check["validation"]["programs"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", serde_json::to_string(check).unwrap()))
        .iter()
        .filter_map(|p| p["load"]["verifier_log_tail"].as_str())
        .find_map(|l| l.lines().rev().find(|l| !l.trim().is_empty()))
        .map(str::to_string);

    let url = file_url(&page);
    with_browser(async |client| {
        client.goto(&url).await.unwrap();
        assert_grid(client, &expected).await;
        assert_filters(client).await;
        assert_cell_opens(client, log_line.as_deref()).await;
        assert_charts(client).await;
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
        std::fs::write(&shot, client.screenshot().await.unwrap()).unwrap();
        eprintln!("screenshot: {}", shot.display());
        assert_clean(client, &url).await;
    });
}

async fn assert_grid(client: &Client, expected: &[(String, Vec<String>)]) {
    let kernels = js(
        client,
        "return [...document.querySelectorAll('table.grid thead th[data-kernel]')].length;",
    )
    .await;
    assert_eq!(kernels, json!(2), "one column per kernel");
    let grid = js(
        client,
        "return [...document.querySelectorAll('table.grid tbody tr')].map(tr =>
            [tr.querySelector('th').textContent,
             [...tr.querySelectorAll('td')].map(td => td.querySelector('summary').textContent)]);",
    )
    .await;
    let symbol = |s: &str| match s {
        "pass" => "✅ pass",
        "fail" => "❌ fail",
        other => panic!("no status {other} expected here"),
    };
    let shown: Vec<(String, Vec<String>)> = serde_json::from_value(grid).unwrap();
    assert_eq!(shown.len(), expected.len(), "one row per object: {shown:?}");
    for ((object, cells), (want_object, want)) in shown.iter().zip(expected) {
        assert_eq!(object, want_object);
        for (cell, want) in cells.iter().zip(want) {
            assert!(
                cell.starts_with(symbol(want)),
                "{object}: a cell reads {cell:?}, the report says {want}"
            );
        }
    }
}

async fn assert_filters(client: &Client) {
    let select = |id: &'static str, value: &'static str| async move {
        let el = client.find(Locator::Css(id)).await.unwrap();
        el.select_by_value(value).await.unwrap();
    };
    select("#f-status", "fail").await;
    assert_eq!(
        visible_rows(client).await,
        ["bpf_loop.bpf.o", "fentry_missing.bpf.o"]
    );
    // Failing on 6.12: only the object missing its fentry target.
    select("#f-kernel", "1").await;
    assert_eq!(visible_rows(client).await, ["fentry_missing.bpf.o"]);
    let hidden = js(
        client,
        "return [...document.querySelectorAll('td[data-kernel=\"0\"]')].every(td => td.offsetParent === null);",
    )
    .await;
    assert_eq!(hidden, json!(true), "the other kernel's column is hidden");
    select("#f-kernel", "").await;
    select("#f-status", "").await;
    let search = client.find(Locator::Css("#f-search")).await.unwrap();
    search.send_keys("XDP").await.unwrap();
    assert_eq!(visible_rows(client).await, ["xdp.bpf.o"]);
    search.clear().await.unwrap();
    search.send_keys(" ").await.unwrap();
    search.clear().await.unwrap();
    js(
        client,
        "document.getElementById('f-search').dispatchEvent(new Event('input'));",
    )
    .await;
    assert_eq!(visible_rows(client).await.len(), 3);
}

/// bpf_loop on 5.10: closed, its log is not shown; clicked, it is.
async fn assert_cell_opens(client: &Client, log_line: Option<&str>) {
    let cell = "tr[data-object=\"bpf_loop.bpf.o\"] td[data-kernel=\"0\"]";
    let pre = client
        .find(Locator::Css(&format!("{cell} pre")))
        .await
        .unwrap();
    assert!(
        !pre.is_displayed().await.unwrap(),
        "the log waits for a click"
    );
    client
        .find(Locator::Css(&format!("{cell} summary")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        pre.is_displayed().await.unwrap(),
        "a click opens the cell's log"
    );
    let text = pre.text().await.unwrap();
    let line = log_line.expect("the report has bpf_loop's verifier log on 5.10");
    assert!(
        text.contains(line.trim()),
        "{line:?} not in the log shown:\n{text}"
    );
    let cell_text = client
        .find(Locator::Css(cell))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cell_text.contains("UNSUPPORTED_HELPER"), "{cell_text}");
}

/// Timing: a boot and a check bar per kernel; history: per run one mark
/// for each of pass, partial and fail, this run's ringed.
async fn assert_charts(client: &Client) {
    let counts = js(
        client,
        "return [document.querySelectorAll('#timing rect.bar.boot').length,
                 document.querySelectorAll('#timing rect.bar.check').length,
                 document.querySelectorAll('#history circle.mark.pass').length,
                 document.querySelectorAll('#history circle.mark.fail').length,
                 document.querySelectorAll('#history circle.mark.current').length];",
    )
    .await;
    assert_eq!(
        counts,
        json!([2, 2, 2, 2, 3]),
        "[boot, check, pass, fail, current]"
    );
}

/// The hostile names of the report fixture, plus markup that would close
/// a cell and run script if it were not escaped, and a 1 MB name: all of
/// it text on the page, nothing run.
#[test]
fn hostile_names_are_text_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = bpfcompat_testkit::reports::hostile_json();
    let evil = "</td></tr><script>window.pwned=1</script>\"onload=\"window.pwned=2\" <img src=x onerror=window.pwned=3>";
    report["targets"][0]["checks"][0]["artifact"]["name"] = json!(evil);
    report["targets"][2]["checks"][0]["artifact"]["name"] = json!(evil);
    report["artifact"]["name"] = json!("n".repeat(1 << 20));
    let json_path = dir.path().join("hostile.json");
    std::fs::write(&json_path, report.to_string()).unwrap();
    let page = dir.path().join("hostile.html");
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args(["report", "--html"])
        .arg(&page)
        .arg(&json_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let url = file_url(&page);
    with_browser(async |client| {
        client.goto(&url).await.unwrap();
        let facts = js(
            client,
            "return {pwned: typeof window.pwned, scripts: document.scripts.length,
                     images: document.images.length,
                     handlers: [...document.querySelectorAll('*')].flatMap(e =>
                        [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
                     rows: document.querySelectorAll('table.grid tbody tr').length,
                     names: [...document.querySelectorAll('table.grid tbody th')].map(th => th.textContent)};",
        )
        .await;
        assert_eq!(facts["pwned"], "undefined", "{facts}");
        assert_eq!(facts["scripts"], 1, "only the page's own script");
        assert_eq!(facts["images"], 0);
        assert_eq!(facts["handlers"], json!([]));
        let names = facts["names"].as_array().unwrap();
        assert!(
            names
                .iter()
                .any(|n| n.as_str().unwrap().contains("</td></tr><script>")),
            "the hostile name is shown as text: {names:?}"
        );
        assert!(client.get_alert_text().await.is_err(), "no dialog opened");
        assert_clean(client, &url).await;
    });
}
