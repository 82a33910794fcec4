//! The Details chart: a real PNG of the promised size, the levels drawn where the layout says, and the same
//! bytes for the same input.

use chrono::{Duration, TimeZone, Utc};
use discord::chart::{
    BACKGROUND, ChartError, ChartLayout, ChartLevels, ENTRY_COLOUR, HEIGHT, PNG_SIGNATURE, STOP_LOSS_COLOUR,
    TAKE_PROFIT_COLOUR, WIDTH, encode_png, render_png, render_rgb,
};
use domain::Candle;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal_macros::dec;
use std::io::Read as _;

fn candles(n: i64) -> Vec<Candle> {
    let start = Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            // A gentle zig-zag around 1.0850.
            let open = dec!(1.0850) + Decimal::from((i % 7) - 3) / dec!(10000);
            let close = open + if i % 2 == 0 { dec!(0.0004) } else { dec!(-0.0003) };
            Candle {
                time: start + Duration::hours(i),
                open,
                high: open.max(close) + dec!(0.0002),
                low: open.min(close) - dec!(0.0002),
                close,
                volume: Decimal::ZERO,
            }
        })
        .collect()
}

fn levels() -> ChartLevels {
    ChartLevels { entry: dec!(1.0852), stop_loss: dec!(1.0830), take_profit: dec!(1.0896) }
}

/// Reads a PNG back: (width, height, bit depth, colour type, the RGB pixels).
fn decode(png: &[u8]) -> (u32, u32, u8, u8, Vec<u8>) {
    assert_eq!(png[..8], PNG_SIGNATURE);
    let mut at = 8;
    let (mut header, mut idat) = (Vec::new(), Vec::new());
    let mut kinds = Vec::new();
    while at < png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + length];
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        assert_eq!(crc.sum().to_be_bytes(), png[at + 8 + length..at + 12 + length], "CRC of {kind:?}");
        kinds.push(String::from_utf8_lossy(kind).into_owned());
        match kind {
            b"IHDR" => header = data.to_vec(),
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + length;
    }
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
    assert_eq!(kinds.last().map(String::as_str), Some("IEND"));
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(idat.as_slice()).read_to_end(&mut raw).unwrap();
    let row = width as usize * 3;
    assert_eq!(raw.len(), (row + 1) * height as usize);
    let mut pixels = Vec::with_capacity(row * height as usize);
    for line in raw.chunks_exact(row + 1) {
        assert_eq!(line[0], 0, "filter type None");
        pixels.extend_from_slice(&line[1..]);
    }
    (width, height, header[8], header[9], pixels)
}

fn pixel(pixels: &[u8], x: u32, y: i32) -> [u8; 3] {
    let at = (y as usize * WIDTH as usize + x as usize) * 3;
    [pixels[at], pixels[at + 1], pixels[at + 2]]
}

#[test]
fn the_chart_is_a_png_of_the_promised_size_with_each_level_on_its_row() {
    let series = candles(80);
    let png = render_png(&series, &levels()).unwrap();
    let (width, height, depth, colour_type, pixels) = decode(&png);
    assert_eq!((width, height, depth, colour_type), (WIDTH, HEIGHT, 8, 2));
    assert_eq!(pixels, render_rgb(&series, &levels()).unwrap(), "the PNG holds exactly the drawn pixels");

    let layout = ChartLayout::new(&series, &levels()).unwrap();
    let mut rows = Vec::new();
    for (price, colour) in [
        (levels().entry, ENTRY_COLOUR),
        (levels().stop_loss, STOP_LOSS_COLOUR),
        (levels().take_profit, TAKE_PROFIT_COLOUR),
    ] {
        let row = layout.row_of(price.to_f64().unwrap());
        assert!((0..HEIGHT as i32).contains(&row));
        // The level runs across the whole width, over the candles, in its own colour.
        for x in [0, WIDTH / 3, WIDTH / 2, WIDTH - 1] {
            assert_eq!(pixel(&pixels, x, row), colour, "level {price} at ({x}, {row})");
        }
        rows.push(row);
    }
    // Higher prices are higher up: take profit above entry above stop loss for this long.
    assert!(rows[2] < rows[0] && rows[0] < rows[1], "{rows:?}");
    // Away from the levels, the left margin is background.
    let quiet = (0..HEIGHT as i32).find(|y| rows.iter().all(|r| (y - r).abs() > 3)).unwrap();
    assert_eq!(pixel(&pixels, 0, quiet), BACKGROUND);
    // Candles were drawn: some pixels are neither background nor a level.
    let candle_pixels = pixels
        .chunks_exact(3)
        .filter(|p| ![BACKGROUND, ENTRY_COLOUR, STOP_LOSS_COLOUR, TAKE_PROFIT_COLOUR].contains(&[p[0], p[1], p[2]]))
        .count();
    assert!(candle_pixels > 1000, "{candle_pixels}");
}

#[test]
fn the_same_input_gives_the_same_bytes_and_other_levels_other_bytes() {
    let a = render_png(&candles(60), &levels()).unwrap();
    let b = render_png(&candles(60), &levels()).unwrap();
    assert_eq!(a, b);
    let moved = ChartLevels { take_profit: dec!(1.0900), ..levels() };
    assert_ne!(a, render_png(&candles(60), &moved).unwrap());
    // Only the latest 60 candles are drawn: 20 older ones change nothing.
    let eighty = candles(80);
    assert_eq!(render_png(&eighty, &levels()).unwrap(), render_png(&eighty[20..], &levels()).unwrap());
    assert!(a.len() < 64 * 1024, "{} bytes", a.len());
}

#[test]
fn nothing_to_draw_is_an_error_and_one_flat_candle_still_draws() {
    assert_eq!(render_png(&[], &levels()), Err(ChartError::NoCandles));
    let flat = Candle {
        high: dec!(1.0852),
        low: dec!(1.0852),
        open: dec!(1.0852),
        close: dec!(1.0852),
        ..candles(1)[0].clone()
    };
    let same = ChartLevels { entry: dec!(1.0852), stop_loss: dec!(1.0852), take_profit: dec!(1.0852) };
    let (width, height, ..) = decode(&render_png(&[flat], &same).unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert!(encode_png(&[0; 5], 2, 1).is_err());
}
