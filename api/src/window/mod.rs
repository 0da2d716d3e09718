//! Windows over keyed streams: tumbling, sliding and session windows in event or processing
//! time, with incremental (reduce, aggregate) or full-window (process) evaluation, allowed
//! lateness and a side output for late data; custom triggers and evictors
//! (`trigger`, `evictor`); and count windows (`count_window`).
//!
//! Semantics follow Flink: a window `[start, end)` fires once the watermark (or processing
//! time) reaches `end - 1`; its results carry the timestamp `end - 1`; an element whose every
//! window ended more than the allowed lateness before the watermark is late.

mod assigner;
mod builtin_triggers;
mod contents;
mod count_window;
mod evictor;
mod operator;
mod pane_buffer;
mod pre_aggregating_operator;
mod session_set;
mod timer_lifecycle;
mod trigger;
mod triggered_operator;
mod triggered_stream;
mod windowed_stream;

pub use assigner::{
    EventTimeSessionWindows, ProcessingTimeSessionWindows, SlidingEventTimeWindows,
    SlidingProcessingTimeWindows, TimeWindow, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows, WindowAssigner,
};
pub use builtin_triggers::{
    ContinuousEventTimeTrigger, CountTrigger, DefaultTrigger, EventTimeTrigger,
    ProcessingTimeTrigger, PurgingTrigger,
};
pub use contents::ProcessWindowFunction;
pub use count_window::{CountWindowFunction, CountWindowedStream};
pub use evictor::{CountEvictor, Evictor, NoEvictor, TimeEvictor};
pub use trigger::{Trigger, TriggerContext, TriggerResult};
pub use triggered_stream::TriggeredWindowedStream;
pub use windowed_stream::WindowedStream;
