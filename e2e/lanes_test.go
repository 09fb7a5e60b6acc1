package e2e

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The whole-cluster tests run beside each other in a fixed number of lanes, longest first.
// go test starts paused parallel tests in no set order (they race for -parallel's slots once
// the sequential tests are done), and a run that starts the small clusters first and the HA
// lifecycle last takes about 10 minutes longer. So make e2e runs every test at once as far as
// go test goes (-parallel above the number of tests) and KK_E2E_LANES=N lets N through lane()
// at a time, in laneOrder. Without KK_E2E_LANES (a developer's go test -run), lane() is
// t.Parallel() alone.
var laneOrder = []string{
	"TestCreateClusterHA",       // about 35 min in CI, the longest
	"TestCreateClusterKubeVIP",  // about 20 min: the whole platform
	"TestCreateClusterAllInOne", // the rest about 4 to 6 min each
	"TestCreateClusterNoNetwork",
	"TestCreateClusterDocker",
}

// laneSettle is how long the first test to arrive waits for the others, which go test
// releases together, before the lanes are given out by rank.
const laneSettle = 2 * time.Second

type laneGate struct {
	mu      sync.Mutex
	free    int
	settled bool
	waiting []laneWaiter
}

type laneWaiter struct {
	rank int
	turn chan struct{}
}

var (
	lanesOnce sync.Once
	lanes     *laneGate // nil: no gate
)

// newLaneGate gives out n lanes once settle has passed.
func newLaneGate(n int, settle time.Duration) *laneGate {
	g := &laneGate{free: n}
	go func() {
		time.Sleep(settle)
		g.mu.Lock()
		g.settled = true
		g.mu.Unlock()
		g.grant()
	}()
	return g
}

// wait blocks until the waiter of rank has a lane; release gives it back.
func (g *laneGate) wait(rank int) (release func()) {
	w := laneWaiter{rank: rank, turn: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	g.grant()
	<-w.turn
	return func() {
		g.mu.Lock()
		g.free++
		g.mu.Unlock()
		g.grant()
	}
}

// lane marks t parallel and, under KK_E2E_LANES, waits for its turn and a free lane, which
// it holds until t and its cleanups are done.
func lane(t *testing.T) {
	t.Helper()
	t.Parallel()
	lanesOnce.Do(func() {
		if n, err := strconv.Atoi(os.Getenv("KK_E2E_LANES")); err == nil && n > 0 {
			lanes = newLaneGate(n, laneSettle)
		}
	})
	if lanes == nil {
		return
	}
	rank := slices.Index(laneOrder, t.Name())
	if rank < 0 {
		rank = len(laneOrder)
	}
	t0 := time.Now()
	release := lanes.wait(rank)
	if d := time.Since(t0); d > laneSettle+time.Second {
		t.Logf("waited %s for a lane (KK_E2E_LANES=%s)", d.Round(time.Second), os.Getenv("KK_E2E_LANES"))
	}
	// registered first, so it runs last: after the test's own cleanups (its machines' removal)
	t.Cleanup(release)
}

// grant lets waiting tests through, lowest rank first, while lanes are free.
func (g *laneGate) grant() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.settled {
		return
	}
	slices.SortStableFunc(g.waiting, func(a, b laneWaiter) int { return a.rank - b.rank })
	for g.free > 0 && len(g.waiting) > 0 {
		close(g.waiting[0].turn)
		g.waiting = g.waiting[1:]
		g.free--
	}
}

// Five waiters arriving in the worst order share two lanes: the two of lowest rank start
// first, whatever the order they came in; each freed lane goes to the lowest rank waiting.
func TestLaneGateOrder(t *testing.T) {
	g := newLaneGate(2, 100*time.Millisecond)
	type started struct {
		rank    int
		release func()
	}
	through := make(chan started, 5)
	for _, rank := range []int{4, 3, 2, 1, 0} {
		go func() { through <- started{rank, g.wait(rank)} }()
		time.Sleep(5 * time.Millisecond)
	}
	next := func() started {
		select {
		case s := <-through:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no waiter got a lane")
			return started{}
		}
	}
	a, b := next(), next()
	if min(a.rank, b.rank) != 0 || max(a.rank, b.rank) != 1 {
		t.Fatalf("first through the gate: ranks %d and %d, want 0 and 1", a.rank, b.rank)
	}
	select {
	case s := <-through:
		t.Fatalf("rank %d got a lane while both were held", s.rank)
	case <-time.After(200 * time.Millisecond):
	}
	held := []started{a, b}
	for _, want := range []int{2, 3, 4} {
		held[0].release()
		held = held[1:]
		s := next()
		if s.rank != want {
			t.Errorf("after a release rank %d got the lane, want %d", s.rank, want)
		}
		held = append(held, s)
	}
}
