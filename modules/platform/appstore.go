package platform

// Where the app store (templates/files/platform/app-store.yaml) serves its chart repository:
// http://kk-app-store.kubesphere-system.svc:8080, index.yaml at its root.
const (
	AppStoreNamespace = "kubesphere-system"
	AppStoreService   = "kk-app-store"
	AppStorePortName  = "http"
	AppStorePort      = 8080
)
