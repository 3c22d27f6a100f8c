//! A tiny HTTP/1.1 server over std's TcpListener, for what a real registry never
//! does: answer a blob with the wrong bytes, redirect to another host. One
//! request per connection (`Connection: close`); it runs until the test ends.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct Request {
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sent 1 MiB at a time with this pause between (a slow network).
    pub pace: Option<std::time::Duration>,
}

impl Response {
    pub fn ok(body: Vec<u8>, content_type: &str) -> Response {
        Response { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body, pace: None }
    }
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"fake says no"}]}"#.to_vec(),
            pace: None,
        }
    }
}

/// Serves `route` on 127.0.0.1:<port>; returns the port and the requests seen.
pub fn serve(route: impl Fn(&Request) -> Response + Send + 'static) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut headers = vec![];
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let req = Request { path, headers };
            let resp = route(&req);
            seen2.lock().unwrap().push(req);
            let mut out =
                format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", resp.status, resp.body.len());
            for (k, v) in &resp.headers {
                out += &format!("{k}: {v}\r\n");
            }
            out += "\r\n";
            let _ = s.write_all(out.as_bytes());
            match resp.pace {
                None => {
                    let _ = s.write_all(&resp.body);
                }
                Some(p) => {
                    for chunk in resp.body.chunks(1 << 20) {
                        if s.write_all(chunk).is_err() {
                            break;
                        }
                        std::thread::sleep(p);
                    }
                }
            }
        }
    });
    (port, seen)
}
