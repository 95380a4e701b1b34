package stack

import "testing"

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://herald:s3cret@db:5432/herald?sslmode=disable": "postgres://herald:xxxxx@db:5432/herald?sslmode=disable",
		"postgres://db/herald?password=s3cret":                    "postgres://db/herald?password=xxxxx",
		"nats://t0ken@nats:4222":                                  "nats://xxxxx@nats:4222",
		"nats://127.0.0.1:4223":                                   "nats://127.0.0.1:4223",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
