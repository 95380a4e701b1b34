// Package crashtest holds the publisher's crash-window tests: a real, separate publisher process (the
// test binary re-executed) is killed with SIGKILL at each point where the ledger and X can disagree, and
// restarted; afterwards X has the post exactly once and the ledger says published, or it says unknown.
package crashtest
