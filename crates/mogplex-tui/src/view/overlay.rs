//! Overlays over the session: `/status`, `/model`, `/mcp`, `/help` and the sign-out question,
//! laid out by [`crate::layout::overlay`] at any size.

use super::style::lines;
use crate::app::Overlay;
use crate::layout;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub(super) fn overlay(f: &mut Frame, o: &Overlay) {
    let area = f.area();
    let laid = layout::overlay(o, area);
    let Some(rect) = laid.area else {
        // Too small for a box: the note on the top rows, over whatever is there.
        let height = u16::try_from(laid.rows.len()).unwrap_or(0).min(area.height);
        let top = Rect::new(area.x, area.y, area.width, height);
        f.render_widget(Clear, top);
        f.render_widget(Paragraph::new(lines(laid.rows)), top);
        return;
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(crate::text::fit(&laid.title, rect.width.saturating_sub(2)));
    if let Some(more) = laid.more {
        block = block.title_bottom(crate::text::fit(&more, rect.width.saturating_sub(2)));
    }
    f.render_widget(Clear, rect);
    f.render_widget(Paragraph::new(lines(laid.rows)).block(block), rect);
}
