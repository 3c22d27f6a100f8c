//! A verb's own options, parsed as runc's urfave/cli (Go's flag package) does:
//! `--name value`, `--name=value`, `-name value`, `-n value`, bools alone or as
//! `--name=true|false`; options end at the first argument that is not one, or at
//! `--`. Engines pass them before the container ID (`exec --process F --detach ID`).

use crate::error::Result;

/// One option: its names (long first, then aliases) and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub names: &'static [&'static str],
    pub value: bool,
}

pub const fn flag(names: &'static [&'static str]) -> Opt {
    Opt { names, value: false }
}

pub const fn value(names: &'static [&'static str]) -> Opt {
    Opt { names, value: true }
}

/// What was given: each option by its first name, in order (repeatable ones, like
/// `--env`, appear once per use), and the arguments after the options.
#[derive(Debug, Default)]
pub struct Parsed {
    pub given: Vec<(&'static str, String)>,
    pub rest: Vec<String>,
}

impl Parsed {
    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.given.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.given.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.clone()).collect()
    }

    pub fn on(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }

    /// A numeric value, or a usage error naming the option.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        self.get(name).map(|v| v.parse().map_err(|_| crate::usage!("--{name}: {v:?} is not a number"))).transpose()
    }
}

/// Parse `args` (what follows the verb) against `opts`; `verb` names the command in errors.
pub fn parse(verb: &str, args: &[String], opts: &[Opt]) -> Result<Parsed> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).filter(|b| !b.is_empty()) else {
            break;
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let opt = opts
            .iter()
            .find(|o| o.names.contains(&name))
            .ok_or_else(|| crate::usage!("{verb}: flag provided but not defined: -{name}"))?;
        let v = match (opt.value, inline) {
            (true, Some(v)) => v,
            (true, None) => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| crate::usage!("{verb}: flag needs an argument: -{name}"))?
            }
            (false, Some(v)) if v == "true" || v == "false" => v,
            (false, Some(v)) => return Err(crate::usage!("{verb}: invalid boolean value {v:?} for -{name}")),
            (false, None) => "true".to_string(),
        };
        out.given.push((opt.names[0], v));
        i += 1;
    }
    out.rest = args[i..].to_vec();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[value(&["env", "e"]), flag(&["detach", "d"]), value(&["pid-file"]), flag(&["tty", "t"])];

    fn p(args: &[&str]) -> Result<Parsed> {
        parse("exec", &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), OPTS)
    }

    #[test]
    fn go_flag_rules() {
        let a = p(&["-e", "A=1", "--env=B=2", "-d", "--pid-file", "/p", "-t=false", "ctr", "sh", "-c", "x"]).unwrap();
        assert_eq!(a.all("env"), ["A=1", "B=2"]);
        assert!(a.on("detach") && !a.on("tty"));
        assert_eq!(a.get("pid-file"), Some("/p"));
        assert_eq!(a.rest, ["ctr", "sh", "-c", "x"], "options end at the first argument");
        assert_eq!(p(&["--", "-d"]).unwrap().rest, ["-d"]);
        assert!(p(&["--nope"]).unwrap_err().to_string().contains("flag provided but not defined: -nope"));
        assert!(p(&["--pid-file"]).unwrap_err().to_string().contains("needs an argument"));
        assert!(p(&["-d=maybe"]).is_err());
    }
}
