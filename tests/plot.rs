//! `icq plot`: the figure is drawn and the fitted slopes in fits.csv recover the slopes of
//! known power laws, one per group.

use icq::plot::{plot, Figure};

#[test]
fn plot_recovers_known_slopes_per_group() {
    let dir = std::env::temp_dir().join(format!("icq-plot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = Vec::new();
    for (group, slope) in [("a", -0.5), ("b", 1.0)] {
        for width in [4.0f64, 8.0, 16.0, 32.0, 64.0] {
            for (seed, wobble) in [(0, 0.98), (1, 1.02)] {
                for checkpoint in 0..2 {
                    // Only the last checkpoint follows the law; the first must be ignored.
                    let y = if checkpoint == 1 {
                        2.0 * width.powf(slope) * wobble
                    } else {
                        1.0
                    };
                    lines.push(format!(
                        "{{\"checkpoint\":{checkpoint},\"seed\":{seed},\"encoding\":\"{group}\",\"width\":{width},\"q_err_obs\":{y}}}"
                    ));
                }
            }
        }
    }
    std::fs::write(dir.join("results.jsonl"), lines.join("\n")).unwrap();
    let figure = Figure {
        x: "width".into(),
        y: "q_err_obs".into(),
        group: Some("encoding".into()),
        checkpoint: None,
        filter: Vec::new(),
        name: None,
    };
    let (svg, fitted) = plot(&dir, &figure, &dir).unwrap();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    // The PNG beside it decodes to the figure's size, with ink on it (axes, text, lines).
    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(svg.with_extension("png")).unwrap(),
    ));
    let mut reader = png.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (860, 600));
    let dark = pixels[..info.buffer_size()]
        .chunks(3)
        .filter(|p| p.iter().all(|&c| c < 100))
        .count();
    assert!(dark > 2_000, "{dark} dark pixels");
    assert_eq!(fitted.len(), 2);
    for (line, want) in fitted.iter().zip([-0.5, 1.0]) {
        let f = line.fit.unwrap();
        assert!((f.slope - want).abs() < 1e-9, "{}: {f:?}", line.group);
        assert!(f.lo < want && want < f.hi, "{}: {f:?}", line.group);
        assert_eq!(f.points, 10);
    }
    let fits = std::fs::read_to_string(dir.join("fits.csv")).unwrap();
    assert!(fits.starts_with("figure,metric,axis,group,slope,slope_lo,slope_hi,points\n"));
    assert_eq!(fits.lines().count(), 3);
    // Drawing again replaces the figure's rows rather than appending them.
    plot(&dir, &figure, &dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("fits.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    // A column that is not there is named.
    let bad = Figure {
        x: "widht".into(),
        ..figure
    };
    let err = plot(&dir, &bad, &dir).unwrap_err().to_string();
    assert!(err.contains("widht"), "{err}");
}
