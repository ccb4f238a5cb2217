package actors

import (
	"context"
	"sync"
)

// workers is a bounded pool of goroutines for MPC work, so that CPU-heavy
// sessions never run inside an actor's Receive and never exceed the
// configured parallelism. Submit never blocks: a full queue is refused with
// ErrWorkersBusy. Safe for concurrent use.
type workers struct {
	jobs chan func(context.Context)
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	once sync.Once
}

func newWorkers(n, queue int) *workers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workers{jobs: make(chan func(context.Context), queue), ctx: ctx, stop: cancel}
	w.wg.Add(n)
	for range n {
		go w.run()
	}
	return w
}

func (w *workers) run() {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			return
		case job := <-w.jobs:
			job(w.ctx)
		}
	}
}

// Submit queues job. The job's context ends when the pool closes.
func (w *workers) Submit(job func(context.Context)) error {
	if w.ctx.Err() != nil {
		return ErrStopped
	}
	select {
	case w.jobs <- job:
		return nil
	default:
		return ErrWorkersBusy
	}
}

// Close cancels running jobs, drops queued ones and waits for the workers.
func (w *workers) Close() {
	w.once.Do(func() {
		w.stop()
		w.wg.Wait()
	})
}
