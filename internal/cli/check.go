package cli

import (
	"errors"
	"fmt"

	"github.com/cradle-runtime/cradle/internal/check"
	"github.com/spf13/cobra"
)

func checkCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "check",
		Short: "check the host; exits non-zero when the daemon could not run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load()
			if err != nil {
				return err
			}
			fatal := false
			for _, r := range check.Run(cfg) {
				fmt.Fprintln(cmd.OutOrStdout(), r.String())
				fatal = fatal || (!r.OK && r.Fatal)
			}
			if fatal {
				return errors.New("the daemon cannot run on this host; see the FAIL lines")
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}
