// The real `rclone serve s3` (rclone's own command and S3 server code), built with the
// local backend only: the full rclone with every backend takes far longer to build.
// Used by the disaster-recovery test as its S3-compatible remote.
package main

import (
	_ "github.com/rclone/rclone/backend/local"
	"github.com/rclone/rclone/cmd"
	_ "github.com/rclone/rclone/cmd/serve"
	_ "github.com/rclone/rclone/cmd/serve/s3"
)

func main() {
	cmd.Main()
}
