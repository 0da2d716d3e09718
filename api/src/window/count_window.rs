//! Count windows over keyed streams, as Flink's `countWindow(size)` and
//! `countWindow(size, slide)`: windows of a number of records per key instead of a span of
//! time.
//!
//! - Tumbling (`count_window(size)`): every `size` records of a key form a window, which
//!   fires with its `size`th record and is then cleared. Reduce and aggregate fold each
//!   record in as it arrives; `process` keeps the records.
//! - Sliding (`count_window_sliding(size, slide)`): every `slide`th record of a key fires a
//!   window over that key's last `size` records (fewer at the start), as Flink's count
//!   trigger with a count evictor.
//!
//! Records that never complete a window (the last ones of a bounded input) do not fire, as
//! in Flink. A window's results carry the timestamp of the record that fired it (Flink
//! stamps them with the end of time, which no event-time operator downstream can use).
//! The state is keyed state (a count and an accumulator or a record list per key), so count
//! windows are checkpointed, restored and rescaled as any keyed state, on both backends.
//!
//! Invariants: a key's window fires exactly when its count reaches the size (tumbling) or
//! the slide (sliding), and its state then holds only what the next window needs; a key
//! holds at most `size + slide - 1` records.

use crate::datastream::DataStream;
use crate::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use crate::keyed_stream::KeyedStream;
use crate::record::Record;
use std::sync::Arc;
use weir_state_backends::{
    AggregateFunction, ListState, ReduceAggregate, StateKey, StateValue, ValueState, VoidNamespace,
};

/// Evaluates a count window over all of its records.
pub trait CountWindowFunction<K, IN, O>: Clone + Send + Sync + 'static {
    /// Produces the results of one fired window of `key` (its records in arrival order).
    fn process(&mut self, key: &K, elements: Vec<IN>, out: &mut Vec<O>) -> FnResult;
}

impl<K, IN, O, F> CountWindowFunction<K, IN, O> for F
where
    F: Fn(&K, Vec<IN>, &mut Vec<O>) -> FnResult + Clone + Send + Sync + 'static,
{
    fn process(&mut self, key: &K, elements: Vec<IN>, out: &mut Vec<O>) -> FnResult {
        self(key, elements, out)
    }
}

/// A keyed stream cut into count windows, waiting for a window function.
pub struct CountWindowedStream<K, T> {
    keyed: KeyedStream<K, T>,
    size: u64,
    slide: u64,
}

impl<K: StateKey + Send + Sync, T: Record> KeyedStream<K, T> {
    /// Tumbling count windows of `size` records per key (`size` 0 is taken as 1).
    pub fn count_window(&self, size: u64) -> CountWindowedStream<K, T> {
        self.count_window_sliding(size, size)
    }

    /// Windows over each key's last `size` records, firing every `slide` records (0 is taken
    /// as 1).
    pub fn count_window_sliding(&self, size: u64, slide: u64) -> CountWindowedStream<K, T> {
        CountWindowedStream {
            keyed: self.clone(),
            size: size.max(1),
            slide: slide.max(1),
        }
    }
}

impl<K: StateKey + Send + Sync, T: Record + StateValue> CountWindowedStream<K, T> {
    /// Reduces each window's records with `f`.
    pub fn reduce<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, f: F) -> DataStream<T> {
        self.aggregate(ReduceAggregate(f))
            .name("CountWindow(Reduce)")
    }

    /// Aggregates each window's records with `agg`.
    pub fn aggregate<ACC: StateValue, R: Record, A: AggregateFunction<T, ACC, R>>(
        &self,
        agg: A,
    ) -> DataStream<R> {
        let agg = Arc::new(agg);
        let stream = if self.size == self.slide {
            self.keyed.process(Incremental {
                agg,
                size: self.size,
                _t: std::marker::PhantomData,
            })
        } else {
            self.buffered(AggregateOver(agg, std::marker::PhantomData))
        };
        stream.name("CountWindow(Aggregate)")
    }

    /// Evaluates each window over all of its records with `f`.
    pub fn process<O: Record, F: CountWindowFunction<K, T, O>>(&self, f: F) -> DataStream<O> {
        self.buffered(f).name("CountWindow(Process)")
    }

    fn buffered<O: Record, F: CountWindowFunction<K, T, O>>(&self, f: F) -> DataStream<O> {
        self.keyed.process(Buffered {
            f,
            size: self.size,
            slide: self.slide,
            _t: std::marker::PhantomData,
        })
    }
}

/// A tumbling count window folded as records arrive: per key, the records so far and the
/// accumulator.
struct Incremental<T, ACC, R, A> {
    agg: Arc<A>,
    size: u64,
    _t: std::marker::PhantomData<fn(T, ACC) -> R>,
}

impl<T, ACC, R, A> Clone for Incremental<T, ACC, R, A> {
    fn clone(&self) -> Self {
        Self {
            agg: self.agg.clone(),
            size: self.size,
            _t: std::marker::PhantomData,
        }
    }
}

impl<K, T, ACC, R, A> KeyedProcessFunction<K, T, R> for Incremental<T, ACC, R, A>
where
    K: StateKey,
    T: 'static,
    ACC: StateValue,
    R: 'static,
    A: AggregateFunction<T, ACC, R>,
{
    type State = ValueState<K, VoidNamespace, (u64, ACC)>;

    fn open(&mut self, ctx: &RuntimeContext<K>) -> FnResult<Self::State> {
        ctx.value_state("count-window")
    }

    fn process_element(
        &mut self,
        value: T,
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, K, R>,
    ) -> FnResult {
        let (count, mut acc) = state
            .value()?
            .unwrap_or_else(|| (0, self.agg.create_accumulator()));
        self.agg.add(value, &mut acc);
        // At or past the size: a restore with a smaller size fires at once.
        if count + 1 >= self.size {
            state.clear()?;
            ctx.collect(self.agg.take_result(acc));
        } else {
            state.update((count + 1, acc))?;
        }
        Ok(())
    }
}

/// A count window whose records are kept: per key, the records since the last firing and
/// up to `size` records in all.
struct Buffered<T, F> {
    f: F,
    size: u64,
    slide: u64,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, F: Clone> Clone for Buffered<T, F> {
    fn clone(&self) -> Self {
        Self {
            f: self.f.clone(),
            size: self.size,
            slide: self.slide,
            _t: std::marker::PhantomData,
        }
    }
}

impl<K, T, O, F> KeyedProcessFunction<K, T, O> for Buffered<T, F>
where
    K: StateKey,
    T: StateValue,
    O: 'static,
    F: CountWindowFunction<K, T, O>,
{
    /// Records since the last firing, and the window's records.
    type State = (
        ValueState<K, VoidNamespace, u64>,
        ListState<K, VoidNamespace, T>,
    );

    fn open(&mut self, ctx: &RuntimeContext<K>) -> FnResult<Self::State> {
        Ok((
            ctx.value_state("count-window-arrived")?,
            ctx.list_state("count-window-records")?,
        ))
    }

    fn process_element(
        &mut self,
        value: T,
        (arrived, records): &mut Self::State,
        ctx: &mut KeyedContext<'_, K, O>,
    ) -> FnResult {
        records.add(value)?;
        let count = arrived.value()?.unwrap_or(0) + 1;
        if count < self.slide {
            arrived.update(count)?;
            return Ok(());
        }
        arrived.clear()?;
        let mut window = records.take()?;
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        window.drain(..window.len().saturating_sub(size));
        if self.size != self.slide {
            records.update(window.clone())?;
        }
        let mut out = Vec::new();
        self.f.process(ctx.current_key(), window, &mut out)?;
        for o in out {
            ctx.collect(o);
        }
        Ok(())
    }
}

/// An aggregation evaluated over a kept window.
struct AggregateOver<A, ACC>(Arc<A>, std::marker::PhantomData<fn() -> ACC>);

impl<A, ACC> Clone for AggregateOver<A, ACC> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), std::marker::PhantomData)
    }
}

impl<K, T, ACC, R, A> CountWindowFunction<K, T, R> for AggregateOver<A, ACC>
where
    A: AggregateFunction<T, ACC, R>,
    ACC: 'static,
    T: 'static,
    R: 'static,
{
    fn process(&mut self, _key: &K, elements: Vec<T>, out: &mut Vec<R>) -> FnResult {
        let mut acc = self.0.create_accumulator();
        for e in elements {
            self.0.add(e, &mut acc);
        }
        out.push(self.0.take_result(acc));
        Ok(())
    }
}
