// Command herald-sealkey makes an Ed25519 key pair for sealing Herald's events (package seal):
//
//	herald-sealkey -out DIR -name approval
//
// writes DIR/approval.key (the private key, mode 0600, for the signing service only) and DIR/approval.pub
// (the public key, for the receivers' keyrings), and prints the key id. It never overwrites a key.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/heraldhq/herald/services/heraldshared/seal"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "herald-sealkey:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("herald-sealkey", flag.ContinueOnError)
	// Parse errors are returned to main, which prints them once; -h prints the usage to stdout.
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "directory for the key files (created with mode 0700 if missing)")
	name := fs.String("name", "", "base name of the key files, e.g. approval or publisher")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: herald-sealkey -out DIR -name NAME\n\nWrites DIR/NAME.key (private, 0600) and DIR/NAME.pub (public, 0644) and prints the key id.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return err
	}
	switch {
	case fs.NArg() != 0:
		return fmt.Errorf("unexpected arguments %q; usage: herald-sealkey -out DIR -name NAME", fs.Args())
	case *out == "" || *name == "":
		return errors.New("both -out DIR and -name NAME are required")
	}
	id, err := seal.WriteKeyPair(*out, *name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "key id:      %s\nprivate key: %s (give it to the signing service only)\npublic key:  %s (add it to the receiving service's keyring)\n",
		id, filepath.Join(*out, *name+".key"), filepath.Join(*out, *name+".pub"))
	return err
}
