package lobby

// Role is what a user may do. Roles are ordered: each includes the rights
// of the roles below it.
type Role string

// Roles.
const (
	RoleUser     Role = "user"     // gets desktops their policy allows
	RoleOperator Role = "operator" // also sees everything and runs power actions and jobs
	RoleAdmin    Role = "admin"    // also changes configuration, users and policies
)

// Permission is one right checked on every call.
type Permission string

// Permissions.
const (
	PermConnect     Permission = "connect"      // get and use a desktop
	PermRead        Permission = "read"         // list hosts, desktops, pools, jobs, audit
	PermOperate     Permission = "operate"      // power actions, job retry
	PermConfigure   Permission = "configure"    // pools, policies, settings
	PermManageUsers Permission = "manage_users" // users, groups, roles
)

var rolePerms = map[Role][]Permission{
	RoleUser:     {PermConnect},
	RoleOperator: {PermConnect, PermRead, PermOperate},
	RoleAdmin:    {PermConnect, PermRead, PermOperate, PermConfigure, PermManageUsers},
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { _, ok := rolePerms[r]; return ok }

// Can reports whether role r holds permission p.
func (r Role) Can(p Permission) bool {
	for _, q := range rolePerms[r] {
		if q == p {
			return true
		}
	}
	return false
}
