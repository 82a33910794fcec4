//! The chart attached to a signal's Details: the recent candles with the entry, stop loss and take profit as
//! horizontal lines, drawn with plotters' bitmap backend and encoded as PNG.
//!
//! The chart has no text on purpose: text needs a font, and plotters finds fonts through the system's
//! fontconfig, which a server may not have. The embed beside the chart carries every number; the chart's
//! lines use the same colours the embed's legend names ([`ENTRY_COLOUR`], [`STOP_LOSS_COLOUR`],
//! [`TAKE_PROFIT_COLOUR`]).
//!
//! Everything here is pure: the same candles and levels give the same bytes.

use domain::Candle;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::io::Write as _;

/// Pixels.
pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 400;
/// The chart shows at most this many candles, the latest ones.
pub const MAX_CANDLES: usize = 60;

/// Discord's dark theme, so the image blends into the message.
pub const BACKGROUND: [u8; 3] = [0x2B, 0x2D, 0x31];
pub const GRID_COLOUR: [u8; 3] = [0x3A, 0x3C, 0x42];
pub const BULL_COLOUR: [u8; 3] = [0x26, 0xA6, 0x9A];
pub const BEAR_COLOUR: [u8; 3] = [0xEF, 0x53, 0x50];
pub const ENTRY_COLOUR: [u8; 3] = [0x58, 0x65, 0xF2];
pub const STOP_LOSS_COLOUR: [u8; 3] = [0xFF, 0x8C, 0x00];
pub const TAKE_PROFIT_COLOUR: [u8; 3] = [0x57, 0xF2, 0x87];

/// Space kept free around the plot, in pixels.
const PAD_X: i32 = 12;
const PAD_Y: i32 = 14;
/// Thickness of a level line, in pixels (the line's centre row and the one below it).
const LEVEL_THICKNESS: i32 = 2;

/// The prices drawn across the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartLevels {
    pub entry: Decimal,
    pub stop_loss: Decimal,
    pub take_profit: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    #[error("there are no candles to chart")]
    NoCandles,
    #[error("a price is not a finite number: {0}")]
    BadPrice(Decimal),
    #[error("drawing the chart failed: {0}")]
    Drawing(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encoding(String),
}

/// Where prices and candles land on the image. Public so tests (and callers that annotate the image) can
/// find a level's row without decoding what was drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartLayout {
    low: f64,
    high: f64,
    candles: usize,
}

impl ChartLayout {
    /// The price range covers every candle and every level, with a little room above and below.
    pub fn new(candles: &[Candle], levels: &ChartLevels) -> Result<ChartLayout, ChartError> {
        let shown = shown(candles);
        if shown.is_empty() {
            return Err(ChartError::NoCandles);
        }
        let mut low = f64::INFINITY;
        let mut high = f64::NEG_INFINITY;
        let prices =
            shown.iter().flat_map(|c| [c.low, c.high]).chain([levels.entry, levels.stop_loss, levels.take_profit]);
        for price in prices {
            let value = to_f64(price)?;
            low = low.min(value);
            high = high.max(value);
        }
        let span = if high > low { high - low } else { high.abs().max(1.0) * 0.001 };
        Ok(ChartLayout { low: low - span * 0.05, high: high + span * 0.05, candles: shown.len() })
    }

    /// The pixel row of a price: the top row is the highest price.
    pub fn row_of(&self, price: f64) -> i32 {
        let plot = f64::from(HEIGHT as i32 - 2 * PAD_Y - 1);
        let fraction = (self.high - price) / (self.high - self.low);
        PAD_Y + (fraction * plot).round() as i32
    }

    /// The pixel column of the middle of the `index`-th candle shown, and half its body width.
    fn column_of(&self, index: usize) -> (i32, i32) {
        let slot = f64::from(WIDTH as i32 - 2 * PAD_X) / self.candles as f64;
        let centre = PAD_X as f64 + slot * (index as f64 + 0.5);
        (centre.round() as i32, ((slot * 0.35).floor() as i32).max(1))
    }
}

/// The latest [`MAX_CANDLES`] candles.
fn shown(candles: &[Candle]) -> &[Candle] {
    &candles[candles.len().saturating_sub(MAX_CANDLES)..]
}

fn to_f64(price: Decimal) -> Result<f64, ChartError> {
    price.to_f64().filter(|v| v.is_finite()).ok_or(ChartError::BadPrice(price))
}

fn colour([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

/// Draws the chart into an RGB buffer of `WIDTH × HEIGHT` pixels, three bytes each, row by row.
pub fn render_rgb(candles: &[Candle], levels: &ChartLevels) -> Result<Vec<u8>, ChartError> {
    let layout = ChartLayout::new(candles, levels)?;
    let mut pixels = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    draw(&mut pixels, shown(candles), levels, &layout).map_err(|e| ChartError::Drawing(e.to_string()))?;
    Ok(pixels)
}

fn draw(
    pixels: &mut [u8],
    candles: &[Candle],
    levels: &ChartLevels,
    layout: &ChartLayout,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&colour(BACKGROUND))?;
    // Four faint horizontal guides, so the eye can compare heights without axis labels.
    for i in 1..5 {
        let y = PAD_Y + (HEIGHT as i32 - 2 * PAD_Y) * i / 5;
        root.draw(&PathElement::new(vec![(PAD_X, y), (WIDTH as i32 - PAD_X, y)], colour(GRID_COLOUR)))?;
    }
    for (index, candle) in candles.iter().enumerate() {
        let (x, half) = layout.column_of(index);
        let style = colour(if candle.close >= candle.open { BULL_COLOUR } else { BEAR_COLOUR });
        let (open, close) = (layout.row_of(to_f64(candle.open)?), layout.row_of(to_f64(candle.close)?));
        let (high, low) = (layout.row_of(to_f64(candle.high)?), layout.row_of(to_f64(candle.low)?));
        root.draw(&PathElement::new(vec![(x, high), (x, low)], style))?;
        root.draw(&Rectangle::new([(x - half, open.min(close)), (x + half, open.max(close))], style.filled()))?;
    }
    // Levels last, so they sit on top of the candles; the entry last of all, as it matters most.
    for (price, level_colour) in
        [(levels.stop_loss, STOP_LOSS_COLOUR), (levels.take_profit, TAKE_PROFIT_COLOUR), (levels.entry, ENTRY_COLOUR)]
    {
        let y = layout.row_of(to_f64(price)?);
        // plotters leaves a filled rectangle's far edge out; one pixel past the image is clipped away.
        let band = [(0, y), (WIDTH as i32, y + LEVEL_THICKNESS - 1)];
        root.draw(&Rectangle::new(band, colour(level_colour).filled()))?;
    }
    root.present()?;
    Ok(())
}

/// The chart as PNG bytes: `WIDTH × HEIGHT`, 8-bit RGB.
pub fn render_png(candles: &[Candle], levels: &ChartLevels) -> Result<Vec<u8>, ChartError> {
    encode_png(&render_rgb(candles, levels)?, WIDTH, HEIGHT)
}

/// The PNG signature every PNG file starts with.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// Encodes 8-bit RGB pixels as a PNG: IHDR, one zlib-compressed IDAT (every row with filter 0), IEND.
/// Written here rather than pulling in an image crate: flate2 is already in the tree, and these few chunks
/// are all a chart needs.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let row = width as usize * 3;
    if width == 0 || height == 0 || rgb.len() != row * height as usize {
        return Err(ChartError::Encoding(format!("{} bytes are not {width}×{height} RGB pixels", rgb.len())));
    }
    let mut scanlines = Vec::with_capacity((row + 1) * height as usize);
    for line in rgb.chunks_exact(row) {
        scanlines.push(0);
        scanlines.extend_from_slice(line);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&scanlines).map_err(|e| ChartError::Encoding(e.to_string()))?;
    let compressed = zlib.finish().map_err(|e| ChartError::Encoding(e.to_string()))?;

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut png = Vec::with_capacity(compressed.len() + 64);
    png.extend_from_slice(&PNG_SIGNATURE);
    for (kind, data) in [(b"IHDR", header.as_slice()), (b"IDAT", compressed.as_slice()), (b"IEND", &[][..])] {
        let length = u32::try_from(data.len()).map_err(|_| ChartError::Encoding("a chunk is too large".into()))?;
        png.extend_from_slice(&length.to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(png)
}
