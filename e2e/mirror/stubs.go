package mirror

import (
	"fmt"
	"os"
	"path/filepath"
)

// Stand-ins for modules that some upstream builds import but the Go module
// proxy available to kk's e2e does not serve. Each one is written by kk,
// implements only what the importing package uses, and fails at run time:
// the feature behind it is never used by kk's tests.

// tencentVPCStub replaces github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc,
// imported only by flannel's "tencent-vpc" backend (kk's e2e uses vxlan).
var tencentVPCStub = map[string]string{
	"go.mod": "module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc\n\ngo 1.20\n",
	"v20170312/stub.go": `// Package v20170312 is kk's e2e mirror stand-in for the Tencent Cloud VPC
// client: every call fails.
package v20170312

import "errors"

var errStub = errors.New("tencent-vpc backend is not available in this flanneld (built by kk's e2e mirror)")

type Client struct{}

func NewClientWithSecretId(secretID, secretKey, region string) (*Client, error) {
	return &Client{}, errStub
}

type Filter struct {
	Name   *string
	Values []*string
}

type Route struct {
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteType            *string
	RouteId              *uint64
	Enabled              *bool
}

type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

type DescribeRouteTablesRequest struct{ Filters []*Filter }

type DescribeRouteTablesResponseParams struct{ RouteTableSet []*RouteTable }

type DescribeRouteTablesResponse struct {
	Response *DescribeRouteTablesResponseParams
}

type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type DeleteRoutesResponse struct{}

type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type CreateRoutesResponse struct{}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest { return &DescribeRouteTablesRequest{} }
func NewDeleteRoutesRequest() *DeleteRoutesRequest               { return &DeleteRoutesRequest{} }
func NewCreateRoutesRequest() *CreateRoutesRequest               { return &CreateRoutesRequest{} }

func (*Client) DescribeRouteTables(*DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, errStub
}

func (*Client) DeleteRoutes(*DeleteRoutesRequest) (*DeleteRoutesResponse, error) { return nil, errStub }

func (*Client) CreateRoutes(*CreateRoutesRequest) (*CreateRoutesResponse, error) { return nil, errStub }
`,
}

// A packageStandIn replaces one package inside a module the build reads (in a patched copy of
// the module, see patchedCopies) by files of kk's own: for a package that imports modules the
// proxy does not serve, when the program never needs it here. Its directory's Go files go;
// the stand-in's come.
type packageStandIn struct {
	module, version string
	dir             string // slash path of the package inside the module
	files           map[string]string
	// add keeps upstream's files and adds these: for a method a fork of the module has and
	// its upstream lacks, or for files below the package (slash paths, "app/dist/x") that
	// upstream's module zip leaves out, such as an embed target built by its release process.
	add bool
}

// put writes si into the module copy at root. A package that is not there is an error: the
// stand-in never adds a package upstream does not have.
func (si packageStandIn) put(root string) error {
	dir := filepath.Join(root, filepath.FromSlash(si.dir))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("stand-in for %s@%s %s: %w", si.module, si.version, si.dir, err)
	}
	for _, e := range ents {
		if si.add {
			if _, clash := si.files[e.Name()]; clash {
				return fmt.Errorf("stand-in for %s@%s %s: %s is upstream's", si.module, si.version, si.dir, e.Name())
			}
			continue
		}
		if e.IsDir() {
			continue // a sub-package is its own
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	for name, content := range si.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if si.add {
			// a file below the package (an embed target upstream's module zip lacks) never
			// overwrites one of upstream's
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("stand-in for %s@%s %s: %s is upstream's", si.module, si.version, si.dir, name)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
