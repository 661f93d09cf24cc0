"""Machine-room access rights (CC-16000 (一)(十三)): holders, grants, badge events, flags and reviews."""
