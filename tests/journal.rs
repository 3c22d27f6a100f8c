//! Reading a container's journal (`<state-dir>/containers/NAME.journal`) from the
//! tests, in either of its forms: text records or JSON lines.

/// The pid a journal text records for `role`, newest record first. Both forms:
/// a line `started ROLE PID START`, or a JSON line that names the role (a
/// `"ROLE"` string) and has `"pid": N`.
pub fn pid_in_journal(text: &str, role: &str) -> Option<i32> {
    let quoted = format!("\"{role}\"");
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix(&format!("started {role} ")) {
            return rest.split(' ').next()?.parse().ok();
        }
        if !(l.starts_with('{') && l.contains(&quoted)) {
            return None;
        }
        let after = l.split("\"pid\"").nth(1)?.trim_start().strip_prefix(':')?.trim_start();
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::pid_in_journal;

    #[test]
    fn journal_pids_in_both_forms() {
        let text = "spec \"name\" \"a\"\nstarted supervisor 41 123\nstarted init 42 124\n";
        assert_eq!(pid_in_journal(text, "supervisor"), Some(41));
        assert_eq!(pid_in_journal(text, "init"), Some(42));
        let json = "{\"spec\":{\"name\":\"a\"}}\n{\"started\": \"supervisor\", \"pid\": 51, \"start\": 9}\n\
                    {\"started\":\"init\",\"pid\":52,\"start\":10}\n";
        assert_eq!(pid_in_journal(json, "supervisor"), Some(51));
        assert_eq!(pid_in_journal(json, "init"), Some(52));
        assert_eq!(pid_in_journal("made dir \"/x\"\n", "supervisor"), None);
    }
}
