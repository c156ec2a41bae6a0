//! The full-screen view of `netio top` (ratatui over crossterm): a status
//! line, the degraded line, the table of targets (each expandable into
//! its processes and clients), the keys. The terminal is restored however
//! the view ends: `q`/Esc/Ctrl-C, SIGTERM, SIGINT or SIGHUP (a signalfd
//! read between keys), an error, or a panic (ratatui's hook). Resizes
//! (SIGWINCH) redraw at the new size; narrower than 80 columns the totals,
//! then the state, then the received rate are left out.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table as TableWidget, TableState};
use ratatui::{DefaultTerminal, Frame};

use super::client;
use super::table::{self, Alarm, Row, Sort, Table};
use super::TopArgs;
use crate::signals::Signals;
use crate::snapshot::Snapshot;

const KEYS: &str = "q quit · s/r sort by sent/received · ↑/↓ select · Enter expand · e all";

/// The view's state between refreshes.
struct View {
    sort: Sort,
    /// The selected target, by name: it stays selected when the order changes.
    selected: Option<String>,
    expanded: HashSet<String>,
    colour: bool,
    /// Why the last refresh failed, shown until one succeeds.
    error: Option<String>,
}

/// Restores the terminal when the view ends, on every path out.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn run(path: &Path, first: Snapshot, args: &TopArgs) -> Result<(), String> {
    // SIGTERM, SIGINT and SIGHUP come as events to poll, so each ends the
    // view through the same restore as `q` (before any thread starts).
    let signals = Signals::install().map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let mut view = View {
        sort: args.sort,
        selected: None,
        expanded: HashSet::new(),
        // NO_COLOR counts when set and not empty (no-color.org).
        colour: !matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty()),
        error: None,
    };
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let _restore = Restore;
    // Keys are read on a thread of their own: when the terminal hangs up,
    // crossterm's reader can spin on end of file without returning, and
    // this loop must still see the SIGHUP that follows and end (the
    // process, and that thread with it).
    let (keys, events) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("netio-top-keys".into())
        .spawn(move || {
            while let Ok(e) = event::read() {
                if keys.send(e).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the key reader: {e}"))?;
    let mut prev: Option<Snapshot> = None;
    let mut cur = first;
    let mut next = Instant::now() + args.interval;
    loop {
        let t = table::build(prev.as_ref(), &cur, view.sort);
        if view.selected.is_none() {
            view.selected = t.targets.first().map(|t| t.name.clone());
        }
        draw(&mut terminal, &view, &t)?;
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match events.recv_timeout(wait) {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || !view.key(k.code, &t) {
                    return Ok(());
                }
            }
            // The terminal is gone.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            // A resize redraws at the next turn of the loop.
            _ => {}
        }
        if signals.next().is_some() {
            return Ok(());
        }
        if Instant::now() >= next {
            next = Instant::now() + args.interval;
            match client::fetch(path) {
                Ok(s) => {
                    view.error = None;
                    prev = Some(std::mem::replace(&mut cur, s));
                }
                Err(e) => view.error = Some(e),
            }
        }
    }
}

impl View {
    /// Applies a key; false to quit.
    fn key(&mut self, code: KeyCode, t: &Table) -> bool {
        let names: Vec<&str> = t.targets.iter().map(|t| t.name.as_str()).collect();
        let at = names
            .iter()
            .position(|n| Some(*n) == self.selected.as_deref());
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('s') => self.sort = Sort::Sent,
            KeyCode::Char('r') => self.sort = Sort::Received,
            KeyCode::Up | KeyCode::Char('k') => {
                let i = at.map_or(0, |i| i.saturating_sub(1));
                self.selected = names.get(i).map(|n| n.to_string());
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let i = at.map_or(0, |i| (i + 1).min(names.len().saturating_sub(1)));
                self.selected = names.get(i).map(|n| n.to_string());
            }
            KeyCode::Enter | KeyCode::Char(' ') | KeyCode::Right | KeyCode::Left => {
                if let Some(name) = &self.selected {
                    if !self.expanded.remove(name) {
                        self.expanded.insert(name.clone());
                    }
                }
            }
            KeyCode::Char('e') => {
                if self.expanded.len() == names.len() {
                    self.expanded.clear();
                } else {
                    self.expanded = names.iter().map(|n| n.to_string()).collect();
                }
            }
            _ => {}
        }
        true
    }

    fn alarm_style(&self, a: Option<Alarm>) -> Style {
        match (a, self.colour) {
            (None, _) => Style::new(),
            (Some(Alarm::Breach), false) => Style::new().add_modifier(Modifier::BOLD),
            (Some(_), false) => Style::new(),
            (Some(Alarm::Breach), true) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            (Some(Alarm::Above), true) => Style::new().fg(Color::Yellow),
            (Some(Alarm::Recovering), true) => Style::new().fg(Color::Cyan),
        }
    }
}

/// Which columns fit in `width`, by priority: label and sent rate always,
/// then the received rate, the state, the totals.
fn columns(width: u16) -> (bool, bool, bool) {
    let received = width >= 30;
    let state = width >= 52;
    let totals = width >= 74;
    (received, state, totals)
}

fn draw(terminal: &mut DefaultTerminal, view: &View, t: &Table) -> Result<(), String> {
    terminal
        .draw(|f| render(f, view, t))
        .map(|_| ())
        .map_err(|e| format!("cannot draw: {e}"))
}

fn render(f: &mut Frame, view: &View, t: &Table) {
    let [status, degraded, body, note, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(
        Paragraph::new(t.status.as_str()).style(Style::new().add_modifier(Modifier::BOLD)),
        status,
    );
    let (text, style) = match &t.degraded {
        Some(d) if view.colour => (d.as_str(), Style::new().fg(Color::Red)),
        Some(d) => (d.as_str(), Style::new().add_modifier(Modifier::BOLD)),
        None => ("degraded: no", Style::new()),
    };
    f.render_widget(Paragraph::new(text).style(style), degraded);
    render_table(f, view, t, body);
    let note_text = match &view.error {
        Some(e) => format!("refresh failed: {e}"),
        None => format!("sorted by {} rate", t.sort.name()),
    };
    f.render_widget(Paragraph::new(note_text), note);
    f.render_widget(
        Paragraph::new(KEYS).style(Style::new().add_modifier(Modifier::REVERSED)),
        keys,
    );
}

fn render_table(f: &mut Frame, view: &View, t: &Table, area: Rect) {
    let (received, state, totals) = columns(area.width);
    let mark = |s: Sort, name: &str| {
        if t.sort == s {
            format!("{name}▼")
        } else {
            name.to_string()
        }
    };
    let mut header = vec![
        Cell::from("TARGET"),
        Cell::from(Line::from(mark(Sort::Sent, "SENT/s")).right_aligned()),
    ];
    // The label takes what the numbers leave: a number is never cut.
    let mut widths = vec![Constraint::Fill(1), Constraint::Length(12)];
    if received {
        header.push(Cell::from(
            Line::from(mark(Sort::Received, "RECV/s")).right_aligned(),
        ));
        widths.push(Constraint::Length(12));
    }
    if totals {
        header.push(Cell::from(Line::from("SENT").right_aligned()));
        header.push(Cell::from(Line::from("RECEIVED").right_aligned()));
        widths.extend([Constraint::Length(10), Constraint::Length(10)]);
    }
    if state {
        header.push(Cell::from("STATE"));
        widths.push(Constraint::Length(9));
    }
    let cells = |r: &Row, label: String| {
        let mut c = vec![
            Cell::from(label),
            Cell::from(Line::from(table::show_rate(r.sent_rate)).right_aligned()),
        ];
        if received {
            c.push(Cell::from(
                Line::from(table::show_rate(r.received_rate)).right_aligned(),
            ));
        }
        if totals {
            c.push(Cell::from(
                Line::from(crate::human::bytes(r.sent)).right_aligned(),
            ));
            c.push(Cell::from(
                Line::from(crate::human::bytes(r.received)).right_aligned(),
            ));
        }
        if state {
            c.push(Cell::from(r.state.clone()));
        }
        TableRow::new(c).style(view.alarm_style(r.alarm))
    };
    let mut rows = Vec::new();
    let mut selected = None;
    for target in &t.targets {
        let open = view.expanded.contains(&target.name);
        if view.selected.as_deref() == Some(target.name.as_str()) {
            selected = Some(rows.len());
        }
        let sign = if open { '-' } else { '+' };
        // Without the state column an alarm still shows, in the label.
        let alarm = if !state && target.row.alarm.is_some() {
            "!"
        } else {
            ""
        };
        rows.push(cells(&target.row, format!("{sign} {alarm}{}", target.name)));
        if !open {
            continue;
        }
        for r in target.procs.iter().chain(&target.peers) {
            rows.push(cells(r, format!("  {}", r.label)));
        }
        if let Some(o) = &target.omitted {
            rows.push(TableRow::new(vec![Cell::from(format!("  ({o})"))]));
        }
    }
    let widget = TableWidget::new(rows, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::UNDERLINED)))
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(widget, area, &mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let s = Snapshot {
            targets: ["a", "b"]
                .map(|n| crate::snapshot::Target {
                    name: n.into(),
                    ..Default::default()
                })
                .to_vec(),
            ..Snapshot::default()
        };
        table::build(None, &s, Sort::Sent)
    }

    #[test]
    fn keys_sort_select_expand_and_quit() {
        let t = table();
        let mut v = View {
            sort: Sort::Sent,
            selected: Some("a".into()),
            expanded: HashSet::new(),
            colour: false,
            error: None,
        };
        assert!(v.key(KeyCode::Char('r'), &t));
        assert_eq!(v.sort, Sort::Received);
        v.key(KeyCode::Char('s'), &t);
        assert_eq!(v.sort, Sort::Sent);
        v.key(KeyCode::Down, &t);
        v.key(KeyCode::Down, &t);
        assert_eq!(v.selected.as_deref(), Some("b"), "stays on the last");
        v.key(KeyCode::Enter, &t);
        assert!(v.expanded.contains("b") && !v.expanded.contains("a"));
        v.key(KeyCode::Enter, &t);
        assert!(v.expanded.is_empty());
        v.key(KeyCode::Char('e'), &t);
        assert_eq!(v.expanded.len(), 2);
        v.key(KeyCode::Char('e'), &t);
        assert!(v.expanded.is_empty());
        assert!(!v.key(KeyCode::Char('q'), &t));
        assert!(!v.key(KeyCode::Esc, &t));
    }

    #[test]
    fn narrower_screens_leave_out_totals_then_state_then_received() {
        assert_eq!(columns(80), (true, true, true));
        assert_eq!(columns(60), (true, true, false));
        assert_eq!(columns(40), (true, false, false));
        assert_eq!(columns(20), (false, false, false));
    }
}
