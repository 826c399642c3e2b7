//! What the dashboard serves: the page (built in, or `static_directory`), the files of
//! `working_directory/data/` and `data/hekate_health.json` rendered from the newest sample. The
//! same [`Site`] answers at `address` (mounted at `/`) and under `/dashboard/` of
//! `http_address`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hekate_engine::telemetry::{Page, PageResponse, Sample};

use super::health;

/// The built-in page: (path, content type, content).
const BUILT_IN: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("static/index.html"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("static/dashboard.css"),
    ),
    (
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "vendor/uplot/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("static/vendor/uplot/uPlot.min.css"),
    ),
    (
        "vendor/uplot/LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("static/vendor/uplot/LICENSE"),
    ),
    (
        "vendor/uplot/VERSION",
        "text/plain; charset=utf-8",
        include_bytes!("static/vendor/uplot/VERSION"),
    ),
];

/// The per-core figures, rendered on request.
const HEALTH: &str = "hekate_health.json";

/// The dashboard's files.
#[derive(Debug)]
pub(super) struct Site {
    data_dir: PathBuf,
    static_dir: Option<PathBuf>,
    headers: Vec<(String, String)>,
}

impl Site {
    pub(super) fn new(
        data_dir: PathBuf,
        static_dir: Option<PathBuf>,
        headers: Vec<(String, String)>,
    ) -> Site {
        Site {
            data_dir,
            static_dir,
            headers,
        }
    }

    /// `working_directory/data`.
    pub(super) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Answers `path` relative to the site's root (`""` or `"index.html"` is the page).
    fn get(&self, path: &str, sample: &Sample) -> PageResponse {
        let path = path.trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        if let Some(file) = path.strip_prefix("data/") {
            if file == HEALTH {
                return self.ok("application/json", health::render(sample));
            }
            return match plain_name(file).then(|| std::fs::read(self.data_dir.join(file))) {
                Some(Ok(body)) => self.ok(content_type(file), body),
                _ => self.not_found(),
            };
        }
        match &self.static_dir {
            Some(dir) => {
                let parts: Vec<&str> = path.split('/').collect();
                if !parts.iter().all(|p| plain_name(p)) {
                    return self.not_found();
                }
                match std::fs::read(dir.join(parts.join("/"))) {
                    Ok(body) => self.ok(content_type(path), body),
                    Err(_) => self.not_found(),
                }
            }
            None => match BUILT_IN.iter().find(|(p, _, _)| *p == path) {
                Some((_, kind, body)) => self.ok(kind, body.to_vec()),
                None => self.not_found(),
            },
        }
    }

    fn ok(&self, content_type: &str, body: Vec<u8>) -> PageResponse {
        let mut headers = vec![("Cache-Control".to_string(), "no-cache".to_string())];
        headers.extend(self.headers.iter().cloned());
        PageResponse {
            status: 200,
            content_type: content_type.to_string(),
            body,
            headers,
        }
    }

    fn not_found(&self) -> PageResponse {
        PageResponse {
            status: 404,
            content_type: "text/plain; charset=utf-8".into(),
            body: b"not found\n".to_vec(),
            headers: self.headers.clone(),
        }
    }
}

/// A file name that stays in its directory: not empty, no `/`, not starting with `.`.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// The content type of a file, by its extension (sandbox outputs are text).
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "text/plain; charset=utf-8",
    }
}

/// The site under a path prefix (`""` at the root of `address`, `"/dashboard"` on
/// `http_address`).
#[derive(Debug)]
pub(super) struct Mounted {
    prefix: String,
    site: Arc<Site>,
}

impl Mounted {
    pub(super) fn new(prefix: &str, site: Arc<Site>) -> Mounted {
        Mounted {
            prefix: prefix.to_string(),
            site,
        }
    }
}

impl Page for Mounted {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn get(&self, path: &str, sample: &Sample) -> PageResponse {
        let rest = path.strip_prefix(self.prefix.as_str()).unwrap_or(path);
        // The page's links are relative: `/dashboard` must end in a slash for them.
        if rest.is_empty() && !self.prefix.is_empty() {
            let mut r = self.site.not_found();
            r.status = 301;
            r.body = Vec::new();
            r.headers
                .push(("Location".to_string(), format!("{}/", self.prefix)));
            return r;
        }
        self.site.get(rest, sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(static_dir: Option<PathBuf>) -> (Site, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "hekate-dash-site-{}-{}",
            std::process::id(),
            static_dir.is_some()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("heka_report.json"), "{}").unwrap();
        (
            Site::new(dir.clone(), static_dir, vec![("X-A".into(), "b".into())]),
            dir,
        )
    }

    #[test]
    fn the_page_data_files_and_health_are_served_and_nothing_outside() {
        let (s, dir) = site(None);
        let sample = Sample::default();
        let page = s.get("/", &sample);
        assert_eq!(page.status, 200);
        assert!(page.content_type.starts_with("text/html"));
        assert!(page.headers.contains(&("X-A".into(), "b".into())));
        assert_eq!(s.get("/vendor/uplot/LICENSE", &sample).status, 200);
        let report = s.get("/data/heka_report.json", &sample);
        assert_eq!((report.status, report.body), (200, b"{}".to_vec()));
        assert_eq!(s.get("/data/hekate_health.json", &sample).status, 200);
        for bad in [
            "/data/../data/heka_report.json",
            "/data/.x",
            "/data/",
            "/nope",
        ] {
            assert_eq!(s.get(bad, &sample).status, 404, "{bad}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_static_directory_replaces_the_page_and_a_prefix_redirects_to_its_slash() {
        let statics =
            std::env::temp_dir().join(format!("hekate-dash-static-{}", std::process::id()));
        std::fs::create_dir_all(&statics).unwrap();
        std::fs::write(statics.join("index.html"), "mine").unwrap();
        let (s, dir) = site(Some(statics.clone()));
        let m = Mounted::new("/dashboard", Arc::new(s));
        let sample = Sample::default();
        assert_eq!(m.get("/dashboard/", &sample).body, b"mine".to_vec());
        assert_eq!(m.get("/dashboard/dashboard.js", &sample).status, 404);
        assert_eq!(m.get("/dashboard/../x", &sample).status, 404);
        let r = m.get("/dashboard", &sample);
        assert_eq!(r.status, 301);
        assert!(
            r.headers
                .contains(&("Location".into(), "/dashboard/".into()))
        );
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(statics);
    }

    proptest::proptest! {
        /// Whatever the path, nothing outside `data/` and `static_directory` is served.
        #[test]
        fn no_path_leaves_the_data_and_static_directories(
            path in "(/|\\.\\.|\\.|data|static|secret|index\\.html|%2e|\\\\|x){0,12}"
        ) {
            let base = std::env::temp_dir().join(format!("hekate-dash-walk-{}", std::process::id()));
            let (data, statics) = (base.join("data"), base.join("static"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::create_dir_all(&statics).unwrap();
            std::fs::write(base.join("secret"), "SECRET").unwrap();
            std::fs::write(data.join("x"), "data").unwrap();
            std::fs::write(statics.join("index.html"), "page").unwrap();
            let s = Site::new(data, Some(statics), Vec::new());
            let answer = s.get(&path, &Sample::default());
            proptest::prop_assert!(answer.body != b"SECRET", "{path} reached the secret");
            proptest::prop_assert!(matches!(answer.status, 200 | 404));
        }
    }
}
