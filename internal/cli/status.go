package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/server"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statusReport is what cradle status shows; -o json prints it as is.
type statusReport struct {
	Socket     string                 `json:"socket"`
	Version    string                 `json:"version"`
	Conditions []statusCondition      `json:"conditions"`
	Handlers   []server.HandlerStatus `json:"handlers"`
	Pods       []statusPod            `json:"pods"`
	Config     map[string]any         `json:"config"`
}

type statusCondition struct {
	Type    string `json:"type"`
	Status  bool   `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

type statusPod struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Namespace  string            `json:"namespace"`
	State      string            `json:"state"`
	Handler    string            `json:"handler"`
	CreatedAt  time.Time         `json:"created_at"`
	Containers []statusContainer `json:"containers"`
}

type statusContainer struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Image     string    `json:"image"`
	CreatedAt time.Time `json:"created_at"`
}

func statusCmd() *cobra.Command {
	var socket, configPath, configDir, format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show a running daemon's config, handlers, pods and containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("-o: %q is not text or json", format)
			}
			if socket == "" {
				cfg, err := (&overrides{configPath: configPath, configDir: configDir}).load()
				if err != nil {
					return fmt.Errorf("find the socket (or give --socket): %w", err)
				}
				socket = cfg.ListenPath()
			}
			socket = strings.TrimPrefix(socket, "unix://")
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			r, err := queryStatus(ctx, socket)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.writeText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", "", "the daemon's CRI socket, PATH or unix://PATH (default: listen from the config)")
	f.StringVar(&configPath, "config", "", "config file naming the socket (default "+config.DefaultPath+")")
	f.StringVar(&configDir, "config-dir", "", "drop-in directory (default "+config.DefaultDropinDir+")")
	f.StringVarP(&format, "output", "o", "text", "text or json")
	return cmd
}

// queryStatus asks the daemon: the verbose Status, then the pods and
// containers.
func queryStatus(ctx context.Context, socket string) (*statusReport, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("status from %s: %w", socket, err)
	}
	r := &statusReport{Socket: "unix://" + socket, Pods: []statusPod{}}
	for _, c := range st.GetStatus().GetConditions() {
		r.Conditions = append(r.Conditions, statusCondition{Type: c.GetType(), Status: c.GetStatus(), Reason: c.GetReason(), Message: c.GetMessage()})
	}
	info := st.GetInfo()
	for key, dst := range map[string]any{server.InfoVersion: &r.Version, server.InfoHandlers: &r.Handlers, server.InfoConfig: &r.Config} {
		if err := json.Unmarshal([]byte(info[key]), dst); err != nil {
			return nil, fmt.Errorf("status info %q from %s (not a cradle daemon?): %w", key, socket, err)
		}
	}
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	ctrs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	byPod := map[string][]statusContainer{}
	for _, c := range ctrs.GetContainers() {
		byPod[c.GetPodSandboxId()] = append(byPod[c.GetPodSandboxId()], statusContainer{
			ID: c.GetId(), Name: c.GetMetadata().GetName(), State: c.GetState().String(),
			Image: c.GetImage().GetImage(), CreatedAt: time.Unix(0, c.GetCreatedAt()).UTC(),
		})
	}
	for _, p := range pods.GetItems() {
		cs := byPod[p.GetId()]
		sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt.Before(cs[j].CreatedAt) })
		if cs == nil {
			cs = []statusContainer{}
		}
		r.Pods = append(r.Pods, statusPod{
			ID: p.GetId(), Name: p.GetMetadata().GetName(), Namespace: p.GetMetadata().GetNamespace(),
			State: p.GetState().String(), Handler: p.GetRuntimeHandler(),
			CreatedAt: time.Unix(0, p.GetCreatedAt()).UTC(), Containers: cs,
		})
	}
	sort.Slice(r.Pods, func(i, j int) bool { return r.Pods[i].CreatedAt.Before(r.Pods[j].CreatedAt) })
	return r, nil
}

func (r *statusReport) writeText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "cradle %s on %s\n\nCONDITION\tSTATUS\tREASON\n", r.Version, r.Socket)
	for _, c := range r.Conditions {
		fmt.Fprintf(w, "%s\t%t\t%s\n", c.Type, c.Status, strings.TrimSpace(c.Reason+" "+c.Message))
	}
	fmt.Fprintf(w, "\nHANDLER\tTYPE\tSTATE\tPATH\n")
	for _, h := range r.Handlers {
		state := "active"
		switch {
		case h.Retired:
			state = "retired"
		case h.Default:
			state = "default"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.Name, h.Type, state, h.Path)
	}
	fmt.Fprintf(w, "\nPOD ID\tNAME\tNAMESPACE\tSTATE\tHANDLER\tCONTAINERS\n")
	for _, p := range r.Pods {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", short(p.ID), p.Name, p.Namespace, p.State, p.Handler, len(p.Containers))
	}
	fmt.Fprintf(w, "\nCONTAINER ID\tNAME\tPOD ID\tSTATE\tIMAGE\n")
	for _, p := range r.Pods {
		for _, c := range p.Containers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", short(c.ID), c.Name, short(p.ID), c.State, c.Image)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nConfig in force:\n")
	return toml.NewEncoder(out).Encode(r.Config)
}

// short is an ID as crictl shows it.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
