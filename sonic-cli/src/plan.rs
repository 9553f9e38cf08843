//! `sonic plan`: the windows a long-video schedule runs at each step, and its cost.

use std::io::Write;

use clap::Args;
use serde::Serialize;
use sonic_core::registry;
use sonic_core::sampling::SvdSchedule;
use sonic_core::schedule::{scheduler, Cost, Layout, Plan, Window};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Frames to generate (12.5 per second of audio in the reference).
    #[arg(long)]
    frames: usize,
    /// Frames per denoiser window.
    #[arg(long, default_value_t = 25)]
    window: usize,
    /// Denoising steps.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    /// Schedule spec, e.g. `shift:alpha=7`, `overlap:o=8,weights=pyramid`, `motion-frames:o=4`, `tiles`.
    #[arg(long, default_value = "shift:alpha=7")]
    schedule: String,
    /// Sampler whose model calls per step enter the cost.
    #[arg(long, default_value = "euler")]
    sampler: String,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct StepView<'a> {
    step: usize,
    windows: &'a [Window],
    boundaries: Vec<usize>,
}

#[derive(Serialize)]
struct PlanView<'a> {
    schedule: String,
    frames: usize,
    window: usize,
    steps: usize,
    cost: Cost,
    per_step: Vec<StepView<'a>>,
}

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let scheduler = scheduler(&args.schedule)?;
    let sampler = registry::sampler(&args.sampler)?;
    let sigmas = SvdSchedule::default().sigmas(args.steps);
    let plan = scheduler.plan(args.frames, args.window, args.steps)?;
    let cost = scheduler.cost(args.frames, args.window, sampler.as_ref(), &sigmas)?;
    let shown_steps = match plan.layout {
        Layout::Fused { .. } => args.steps,
        Layout::Clips { .. } => 1,
    };
    let per_step = (0..shown_steps)
        .map(|step| StepView {
            step,
            windows: plan.windows_at(step),
            boundaries: plan.boundaries(step),
        })
        .collect();
    let view = PlanView {
        schedule: scheduler.spec(),
        frames: args.frames,
        window: args.window,
        steps: args.steps,
        cost,
        per_step,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &view)?;
        writeln!(out)?;
    } else {
        print_text(&mut out, &view, &plan)?;
    }
    Ok(())
}

fn print_text(out: &mut impl Write, view: &PlanView, plan: &Plan) -> std::io::Result<()> {
    writeln!(out, "schedule  {}", view.schedule)?;
    writeln!(
        out,
        "frames    {} in windows of {}, {} steps",
        view.frames, view.window, view.steps
    )?;
    writeln!(
        out,
        "cost      {} denoiser calls, {} frame evaluations, at most {} frames per call",
        view.cost.denoiser_calls, view.cost.frame_evaluations, view.cost.max_frames_per_call
    )?;
    if let Layout::Clips { .. } = plan.layout {
        writeln!(out, "clips run one after another, every step each; `carry` slots hold the previous clip's latents")?;
    }
    writeln!(out, "windows   a-b: frames a to b; (a-b): context padding that does not vote; carry a-b: carried latents")?;
    for step in &view.per_step {
        let windows: Vec<String> = step.windows.iter().map(describe).collect();
        writeln!(out, "step {:>3}  {}", step.step, windows.join("  "))?;
        let b: Vec<String> = step.boundaries.iter().map(usize::to_string).collect();
        writeln!(
            out,
            "          boundaries: {}",
            if b.is_empty() {
                "none".into()
            } else {
                b.join(" ")
            }
        )?;
    }
    Ok(())
}

/// A run of slots of one kind whose frames step by +1 or −1.
struct Run {
    start: usize,
    end: usize,
    direction: isize,
    kind: Slot,
}

#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Carried,
    Padding,
    Generated,
}

impl Run {
    fn extends_to(&self, frame: usize, kind: Slot) -> bool {
        let step = frame as isize - self.end as isize;
        kind == self.kind && step.abs() == 1 && (self.direction == 0 || step == self.direction)
    }
}

/// Slots grouped into runs of consecutive frames (ascending or descending) of one kind.
fn describe(w: &Window) -> String {
    let mut runs: Vec<Run> = Vec::new();
    for (k, &frame) in w.frames.iter().enumerate() {
        let kind = if k < w.carried {
            Slot::Carried
        } else if w.weights[k] == 0.0 {
            Slot::Padding
        } else {
            Slot::Generated
        };
        match runs.last_mut() {
            Some(run) if run.extends_to(frame, kind) => {
                run.direction = frame as isize - run.end as isize;
                run.end = frame;
            }
            _ => runs.push(Run {
                start: frame,
                end: frame,
                direction: 0,
                kind,
            }),
        }
    }
    let text: Vec<String> = runs
        .iter()
        .map(|r| {
            let span = if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            };
            match r.kind {
                Slot::Carried => format!("carry {span}"),
                Slot::Padding => format!("({span})"),
                Slot::Generated => span,
            }
        })
        .collect();
    format!("[{}]", text.join(","))
}
