package pipeline

import (
	"sync"
	"time"
)

// EventKind tells what an Event reports.
type EventKind int

const (
	EventRunStart  EventKind = iota // Total = number of task×host units
	EventTaskStart                  // a task starts on a host
	EventTaskEnd                    // a task ended on a host; Result is set
	EventCommand                    // a command ran (Cmd, ExitCode, Stdout, Stderr)
	EventUpload                     // a file was uploaded or found identical (Path, Changed)
	EventLog                        // a free-form message (Message; Warn for a warning)
	EventRunEnd                     // the run ended; Report is set
)

// Event flows one way out of the engine to observers (terminal UI, per-host logs).
type Event struct {
	Kind     EventKind
	Time     time.Time
	Run      string
	Task     string
	Host     string
	Total    int
	Result   *Result
	Report   *Report
	Cmd      string
	Sudo     bool
	ExitCode int
	Stdout   string
	Stderr   string
	Path     string
	Changed  bool
	Message  string
	Warn     bool // an EventLog the user must see (a module's t.Log.Warn), verbose or not
	Err      error
	Duration time.Duration
}

// Observer consumes events. It is called from many goroutines and must not block for long.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// Observers fans an event out to several observers, one event at a time, in order.
type Observers struct {
	mu   sync.Mutex
	list []Observer
}

// NewObservers returns a fan-out over list (nil entries are dropped).
func NewObservers(list ...Observer) *Observers {
	o := &Observers{}
	for _, l := range list {
		if l != nil {
			o.list = append(o.list, l)
		}
	}
	return o
}

// Observe delivers e to every observer; events are serialised so observers need no locking.
func (o *Observers) Observe(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.list {
		l.Observe(e)
	}
}
