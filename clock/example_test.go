package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// A test drives a timeout on a Fake: it waits until the code under test has
// set its timer, then advances past it, without sleeping.
func ExampleFake() {
	c := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(context.Background(), c, time.Minute) }()

	if err := c.WaitForTimer(context.Background(), time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	c.Advance(time.Minute)
	fmt.Println(<-done, c.Now().Format(time.TimeOnly))
	// Output: <nil> 00:01:00
}
