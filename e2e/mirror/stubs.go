package mirror

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
