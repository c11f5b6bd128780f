//! Counts scenarios by outcome, for the closing `N passed, M failed` line.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use cucumber::{
    Event, World, cli,
    event::{Cucumber, Feature, Hook, RetryableScenario, Rule, Scenario, Source, Step},
    gherkin, parser, writer,
};

/// Outcomes so far, shared between the writer and whoever reads the totals.
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<Counts>>);

/// Scenario totals of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    /// Failed, skipped or undefined steps, failed hooks and unparsable features alike.
    pub failed: usize,
}

type ScenarioKey = (
    Source<gherkin::Feature>,
    Option<Source<gherkin::Rule>>,
    Source<gherkin::Scenario>,
);

#[derive(Debug, Default)]
struct Counts {
    running: HashMap<ScenarioKey, bool>,
    totals: Totals,
}

impl Tally {
    pub fn totals(&self) -> Totals {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).totals
    }

    fn scenario<W>(&self, key: ScenarioKey, event: &Scenario<W>) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Scenario::Started => {
                counts.running.insert(key, true);
            }
            Scenario::Step(_, step) | Scenario::Background(_, step) => {
                if matches!(step, Step::Failed(..) | Step::Skipped) {
                    counts.running.insert(key, false);
                }
            }
            Scenario::Hook(_, Hook::Failed(..)) => {
                counts.running.insert(key, false);
            }
            Scenario::Finished => {
                // A scenario that never started properly is not a pass either.
                let passed = counts.running.remove(&key).unwrap_or(false);
                if passed {
                    counts.totals.passed += 1;
                } else {
                    counts.totals.failed += 1;
                }
            }
            Scenario::Hook(..) | Scenario::Log(_) => {}
        }
    }
}

impl<W: World> writer::Writer<W> for Tally {
    type Cli = cli::Empty;

    async fn handle_event(&mut self, event: parser::Result<Event<Cucumber<W>>>, _: &Self::Cli) {
        let event = match event {
            Ok(event) => event.value,
            Err(_) => {
                // A feature file that cannot be parsed runs nothing: count it against the run.
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .totals
                    .failed += 1;
                return;
            }
        };
        match event {
            Cucumber::Feature(
                feature,
                Feature::Scenario(scenario, RetryableScenario { event, .. }),
            ) => {
                self.scenario((feature, None, scenario), &event);
            }
            Cucumber::Feature(
                feature,
                Feature::Rule(rule, Rule::Scenario(scenario, RetryableScenario { event, .. })),
            ) => {
                self.scenario((feature, Some(rule), scenario), &event);
            }
            _ => {}
        }
    }
}

impl writer::NonTransforming for Tally {}
